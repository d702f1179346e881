# Builtins-heavy code: len, sorted with key functions, dict and str methods, json, re.
import json
import re

from _scale import scaled

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron "
         "pi rho sigma tau upsilon phi chi psi omega").split()
PATTERN = re.compile(r"[aeiou]{2}|[^aeiou ]{3}")


def key(word):
    return (len(word), word[::-1])


checksum = 0
for i in range(scaled(15000)):
    words = sorted(WORDS, key=key)
    counts = {}
    for word in words:
        counts[word[0]] = counts.get(word[0], 0) + len(word)
    text = " ".join(w.upper() if i % 2 else w.title() for w in words)
    checksum += len(PATTERN.findall(text.lower())) + sum(counts.values())
    checksum += len(json.loads(json.dumps(counts)))
print("builtins checksum", checksum)
