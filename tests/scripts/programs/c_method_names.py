# C methods whose names depend on what they are bound to: a type's __new__ (bound to the
# type; every type shares one definition), static and class methods (bound to the class),
# a method that a subclass overrides (super().append is list's), a metatype's method.


class Plain:
    def __new__(cls):
        return object.__new__(cls)


class Appending(list):
    def append(self, value):
        super().append(value)


for i in range(5):
    Plain()
    tuple.__new__(tuple, (i,))
    int.__new__(int, i)
str.maketrans("a", "b")
bytes.maketrans(b"a", b"b")
dict.fromkeys([1, 2])
int.from_bytes(b"\x01", "big")
items = Appending()
for i in range(3):
    items.append(i)
type.mro(Appending)
Appending.mro()
