"""Acceptance 4 of the access issue (query part): SQL injection and wildcard abuse in QIDO-RS parameters.

Matching values are bound parameters and LIKE wildcards in them are escaped, so hostile values
match literally: they neither fail (no 500) nor widen the result beyond the caller's scope.
"""

from __future__ import annotations

import httpx
import pytest

from tests.security.conftest import Tenant, study_uids
from tests.support.server import ServerProcess
from yunying.auth.access import Role

pytestmark = pytest.mark.timeout(300)

HOSTILE = [
    "' OR '1'='1", "1' OR 1=1 --", "'; DROP TABLE study; --", "\\' OR 1=1 --", "%", "_", "%%%", "%' OR '%'='",
    "*' OR 1=1 --", "\x00", "a" * 5000, "1.2.3\\1.2.4' OR 1=1 --", "ANON^%", "张三' OR 1=1",
]


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_hostile_matching_values_match_literally_and_stay_in_scope(
        two_hospitals: tuple[ServerProcess, Tenant, Tenant]) -> None:
    server, a, b = two_hospitals
    assert a.study and b.study
    reader = a.headers(Role.RADIOLOGIST)
    for key in ("PatientName", "PatientID", "AccessionNumber", "StudyInstanceUID", "StudyDescription", "ModalitiesInStudy",
                "StudyDate"):
        for value in HOSTILE:
            response = httpx.get(f"{server.dicomweb}/studies", params={key: value}, headers=reader, timeout=30)
            assert response.status_code in (200, 204, 400), (key, value, response.status_code)
            if response.status_code != 400:
                assert study_uids(response) <= {a.study.study_uid}, (key, value)
                assert b.study.study_uid not in response.text
    # Universal and wildcard matching stay inside the caller's scope.
    for value in ("*", "?*", "**"):
        found = study_uids(httpx.get(f"{server.dicomweb}/studies", params={"PatientName": value}, headers=reader))
        assert found == {a.study.study_uid}, value
    # SQL LIKE wildcards are literal: "%" and "_" match nothing here.
    for value in ("%", "_%", "ACC%"):
        assert study_uids(httpx.get(f"{server.dicomweb}/studies", params={"AccessionNumber": value}, headers=reader)) == set()
    # The database is intact and still answers.
    assert study_uids(httpx.get(f"{server.dicomweb}/studies", headers=b.headers(Role.RADIOLOGIST))) == {b.study.study_uid}
