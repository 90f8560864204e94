#!/usr/bin/env python3
"""The local endpoint (tools/fake_endpoint.py, botocore checks and all) with one difference: a
scripted 403 answers as the services do for an expired session token
(ExpiredTokenException), so that the flusher's credential refresh can be tested."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import fake_endpoint as fe  # noqa: E402

_scripted = fe.Handler._fault_error


def _fault_error(self, svc, code, cfg):
    # the scripted outcome arrives as the script wrote it ("403"), a string
    if str(code) == "403":
        return fe.ApiError(403, "ExpiredTokenException",
                           "The security token included in the request is expired", coral=True)
    return _scripted(self, svc, code, cfg)


fe.Handler._fault_error = _fault_error

if __name__ == "__main__":
    sys.exit(fe.main())
