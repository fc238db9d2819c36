# tests/python/test_signatures.py
#
# Arguments are checked against the function's or method's signature when
# the call is made (TypeError at .remote(), before anything is sent), and
# an actor class shows its user's class: class attributes, class and static
# methods, its name and docstring, dir().

import pytest

import loom


@loom.remote
def add(a, b, *, scale=1):
    return (a + b) * scale


@loom.remote
def anything(*args, **kwargs):
    return len(args) + len(kwargs)


@loom.remote
class Account:
    """A bank account."""
    CURRENCY = "EUR"

    def __init__(self, owner, balance=0):
        self.owner = owner
        self.balance = balance

    @classmethod
    def describe(cls):
        return f"{cls.__name__} in {cls.CURRENCY}"

    @staticmethod
    def fee(amount):
        return amount // 100

    def deposit(self, amount, *, note=""):
        self.balance += amount
        return self.balance


@loom.remote
class Plain:
    def ping(self):
        return "pong"


def test_a_task_with_arguments_its_function_cannot_take_fails_at_remote(
        loom_cluster):
    assert loom.get(add.remote(1, 2, scale=3)) == 9
    with pytest.raises(TypeError, match="missing a required argument: 'b'"):
        add.remote(1)
    with pytest.raises(TypeError, match="too many positional"):
        add.remote(1, 2, 3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'c'"):
        add.options(num_cpus=1).remote(1, 2, c=3)
    assert loom.get(anything.remote(1, 2, x=3)) == 3


def test_an_actor_checks_its_constructor_and_methods_at_remote(
        loom_cluster):
    with pytest.raises(TypeError, match="missing a required argument"):
        Account.remote()
    with pytest.raises(TypeError, match="takes no arguments|too many"):
        Plain.remote(1)
    acct = Account.remote("ann", balance=10)
    assert loom.get(acct.deposit.remote(5, note="gift")) == 15
    with pytest.raises(TypeError, match="missing a required argument"):
        acct.deposit.remote()
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        acct.deposit.remote(1, memo="x")
    # The failed calls sent nothing: the balance is as it was.
    assert loom.get(acct.deposit.remote(0)) == 15
    assert loom.get(Plain.remote().ping.remote()) == "pong"


def test_an_actor_class_shows_its_users_class(loom_cluster):
    assert Account.CURRENCY == "EUR"
    assert Account.describe() == "Account in EUR"
    assert Account.fee(250) == 2
    assert Account.__name__ == "Account"
    assert Account.__doc__ == "A bank account."
    assert {"CURRENCY", "describe", "deposit", "remote", "options"} <= \
        set(dir(Account))
    with pytest.raises(AttributeError):
        Account.no_such_thing
