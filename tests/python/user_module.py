# tests/python/user_module.py
#
# A plain module of the user's, next to the tests and not installed
# anywhere: tasks import it by name, which works only when workers run with
# the driver's sys.path (test_workers.py).

import os

LOADED_FROM = os.path.abspath(__file__)


def greet(name):
    return f"hello, {name}"
