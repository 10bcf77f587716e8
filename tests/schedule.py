"""The order test files go to pytest-xdist workers (`make test` runs `-n 2 --dist loadfile`).

xdist hands out files largest first by number of tests, which leaves the files of a few
long tests (Chromium journeys, the fuzz test, nginx/uwsgi and MariaDB stacks) to the end,
where one worker runs them while the other has nothing left. These go out first, longest
first; the rest follow in xdist's own order. Only the order changes: each file still runs
whole on one worker.
"""
import collections

import pytest

SLOW_FIRST = (
    "tests/browser/test_order_flow.py",
    "tests/test_fuzz.py",
    "tests/browser/",
    "tests/test_cron_leases.py",
    "tests/test_bad_input.py",
    "tests/test_mcp_server.py",
    "tests/test_two_nodes.py",
    "tests/test_deploy.py",
    "tests/test_replica.py",
    "tests/test_openapi_constraints.py",
    "tests/test_auth_matrix.py",
)


def rank(scope):
    for i, prefix in enumerate(SLOW_FIRST):
        if scope.startswith(prefix):
            return i
    return len(SLOW_FIRST)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SlowFirst(LoadFileScheduling):
        ordered = False

        def _assign_work_unit(self, node):
            if not self.ordered:   # the first call: the queue holds every file
                self.ordered = True
                self.workqueue = collections.OrderedDict(
                    sorted(self.workqueue.items(), key=lambda unit: rank(unit[0])))
            super()._assign_work_unit(node)

    return SlowFirst(config, log)
