# @vztrace.ignore (api_test.cpp): noisy, K.method and Quiet's methods are left out with all
# they call; leaf is called once outside them, from sibling.
import vztrace


def leaf():
    pass


def helper():
    leaf()


@vztrace.ignore
def noisy():
    helper()
    leaf()
    vztrace.instant("inside ignored")
    with vztrace.span("span inside ignored"):
        leaf()


class K:
    @vztrace.ignore
    def method(self):
        helper()


@vztrace.ignore
class Quiet:
    def a(self):
        leaf()

    @staticmethod
    def b():
        leaf()


def sibling():
    leaf()


def caller():
    noisy()
    sibling()
    K().method()
    Quiet().a()
    Quiet.b()


caller()
