"Fixtures shared by the server tests."
import os
import pytest


@pytest.fixture(scope='module')
def model_path():
    "The model the server tests serve: `$REASONING_NB_TEST_MODEL`, else the trained tiny run (trained once, cached)."
    if os.environ.get('REASONING_NB_TEST_MODEL'): return os.environ['REASONING_NB_TEST_MODEL']
    from reasoning_nb.runs import cached_run
    return str(cached_run('tiny'))
