# Object-oriented code: classes, properties, methods, inheritance, dunder methods.
from _scale import scaled


class Vector:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __add__(self, other):
        return Vector(self.x + other.x, self.y + other.y)

    @property
    def norm1(self):
        return abs(self.x) + abs(self.y)


class Body:
    def __init__(self, position, velocity):
        self.position, self.velocity = position, velocity

    def step(self):
        self.position = self.position + self.velocity
        return self.position.norm1


class Heavy(Body):
    def step(self):
        return super().step() * 2


bodies = [(Heavy if i % 3 else Body)(Vector(i, -i), Vector(1, 2)) for i in range(100)]
total = 0
for _ in range(scaled(6000)):
    for body in bodies:
        total += body.step()
print("oop checksum", total)
