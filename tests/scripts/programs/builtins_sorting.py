import json
import re

WORDS = "the quick brown fox jumps over the lazy dog again and again".split()


def key_length(word):
    return (len(word), word)


def analyse(words):
    table = {}
    for word in words:
        table[word] = table.get(word, 0) + 1
    ordered = sorted(words, key=key_length)
    ordered.sort(key=lambda w: w[::-1])
    text = " ".join(ordered).upper()
    found = re.findall(r"[AEIOU]+", text)
    data = json.loads(json.dumps(table))
    return len(found), max(data.values()), min(map(len, words)), isinstance(text, str)


print(analyse(WORDS), analyse(WORDS[:5]))
