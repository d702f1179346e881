class Shape:
    def __init__(self, name):
        self.name = name

    def area(self):
        return 0

    @property
    def label(self):
        return f"{self.name}:{self.area()}"


class Square(Shape):
    def __init__(self, side):
        super().__init__("square")
        self.side = side

    def area(self):
        return self.side * self.side

    @staticmethod
    def unit():
        return Square(1)

    @classmethod
    def of(cls, side):
        return cls(side)


def make_counter():
    count = 0

    def bump():
        nonlocal count
        count += 1
        return count
    return bump


shapes = [Square.of(i) for i in range(20)] + [Square.unit()]
labels = [s.label for s in shapes]
bump = make_counter()
for _ in range(7):
    bump()
print(len(labels), sum(len(x) for x in labels), bump())
