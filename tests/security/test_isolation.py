"""Acceptance 2 of the access issue: hospital A never sees hospital B's data, except what B granted.

Over DICOMweb (QIDO-RS, WADO-RS, STOW-RS) with users' tokens and over DIMSE (C-FIND, C-MOVE,
C-GET with dcmtk's findscu/movescu/getscu) with each hospital's registered AE title.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from tests.security.conftest import Tenant, direct, stow, study_uids
from tests.support.gateway_data import make_study
from tests.support.server import ServerProcess, free_port
from yunying.auth.access import Role
from yunying.auth.grants import grant_study, revoke_grant
from yunying.auth.peers import add_peer
from yunying.index.models import AccessGrant

pytestmark = pytest.mark.timeout(600)
DCMTK = {**os.environ, "TCP_NODELAY": "1"}


def findscu(server: ServerProcess, calling: str) -> set[str]:
    done = subprocess.run(["findscu", "-S", "-aet", calling, "-aec", server.ae_title, "-k", "QueryRetrieveLevel=STUDY",
                           "-k", "StudyInstanceUID", "127.0.0.1", str(server.dicom_port)],
                          capture_output=True, text=True, timeout=60, env=DCMTK)
    found = set()
    for line in (done.stdout + done.stderr).splitlines():
        if "(0020,000d)" in line and "[" in line:
            found.add(line.split("[", 1)[1].split("]", 1)[0].strip().rstrip("\x00"))
    return found


def getscu(server: ServerProcess, calling: str, study_uid: str, out: Path) -> tuple[int, str]:
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["getscu", "-S", "-aet", calling, "-aec", server.ae_title, "-od", str(out),
                           "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}",
                           "127.0.0.1", str(server.dicom_port)], capture_output=True, text=True, timeout=60, env=DCMTK)
    return len(list(out.iterdir())), done.stdout + done.stderr


def test_dicomweb_isolation_and_grants(two_hospitals: tuple[ServerProcess, Tenant, Tenant], tmp_path: Path) -> None:
    server, a, b = two_hospitals
    assert a.study and b.study
    reader_a = a.headers(Role.RADIOLOGIST)
    # QIDO: only A's study, at every level; B's study not even countable
    assert study_uids(httpx.get(f"{server.dicomweb}/studies", headers=reader_a)) == {a.study.study_uid}
    for level in ("series", "instances"):
        rows = httpx.get(f"{server.dicomweb}/{level}", headers=reader_a).json()
        assert {r["0020000D"]["Value"][0] for r in rows} == {a.study.study_uid}
    by_uid = httpx.get(f"{server.dicomweb}/studies", params={"StudyInstanceUID": b.study.study_uid}, headers=reader_a)
    assert study_uids(by_uid) == set()
    # WADO-RS / metadata / rendered: B's study is "not found", exactly like one that does not exist
    for suffix in ("", "/metadata", "/thumbnail"):
        response = httpx.get(f"{server.dicomweb}/studies/{b.study.study_uid}{suffix}", headers=reader_a)
        missing = httpx.get(f"{server.dicomweb}/studies/1.2.3.4.5.6.7{suffix}", headers=reader_a)
        assert response.status_code == missing.status_code == 404
        assert response.json()["detail"] == missing.json()["detail"]
    # STOW: A cannot write into B's study
    intruder = make_study(tmp_path / "intruder", 1, accession="X")
    import pydicom

    ds = pydicom.dcmread(intruder.files[0])
    ds.StudyInstanceUID = b.study.study_uid
    ds.save_as(intruder.files[0], enforce_file_format=True)
    refused = stow(server, a.headers(Role.TECHNICIAN), intruder.files)
    assert refused.status_code == 409
    assert refused.json()["00081198"]["Value"][0]["00081197"]["Value"][0] == 0x0124
    assert "hosp-b" not in refused.text
    assert study_uids(httpx.get(f"{server.dicomweb}/studies", headers=b.headers(Role.RADIOLOGIST))) == {b.study.study_uid}
    b_count = httpx.get(f"{server.dicomweb}/studies/{b.study.study_uid}/instances", headers=b.headers(Role.RADIOLOGIST))
    assert len(b_count.json()) == 3  # nothing was added to B's study

    # A consultation grant of B's study to one user of A: exactly that study, for that user only
    archive = direct(server)
    try:
        with archive.sessions() as session:
            from yunying.index.models import User

            user_id = session.execute(select(User.id).where(User.username == "radiologist-hosp-a")).scalar_one()
        grant = grant_study(archive.sessions, kind="consultation", study_uid=b.study.study_uid, granted_by=None,
                            to_user=user_id)
        assert study_uids(httpx.get(f"{server.dicomweb}/studies", headers=reader_a)) == {a.study.study_uid, b.study.study_uid}
        assert httpx.get(f"{server.dicomweb}/studies/{b.study.study_uid}", headers=reader_a).status_code == 200
        other_user_of_a = a.headers(Role.CLINICIAN)
        assert study_uids(httpx.get(f"{server.dicomweb}/studies", headers=other_user_of_a)) == {a.study.study_uid}
        # an expired grant is no grant
        with archive.sessions() as session:
            session.execute(update(AccessGrant).where(AccessGrant.id == grant)
                            .values(expires_at=datetime(2020, 1, 1, tzinfo=UTC)))
            session.commit()
        assert study_uids(httpx.get(f"{server.dicomweb}/studies", headers=reader_a)) == {a.study.study_uid}
        # a grant to the whole institution, then revoked
        grant = grant_study(archive.sessions, kind="regional-sharing", study_uid=b.study.study_uid, granted_by=None,
                            to_institution=a.institution_id)
        assert b.study.study_uid in study_uids(httpx.get(f"{server.dicomweb}/studies", headers=other_user_of_a))
        assert revoke_grant(archive.sessions, grant)
        assert study_uids(httpx.get(f"{server.dicomweb}/studies", headers=other_user_of_a)) == {a.study.study_uid}
    finally:
        archive.close()


def test_dimse_isolation_and_grants(two_hospitals: tuple[ServerProcess, Tenant, Tenant], tmp_path: Path) -> None:
    server, a, b = two_hospitals
    assert a.study and b.study
    archive = direct(server)
    try:
        add_peer(archive.sessions, "PACS_A", "127.0.0.1", a.institution_id, "technician")
        add_peer(archive.sessions, "PACS_B", "127.0.0.1", b.institution_id, "technician")
        assert findscu(server, "PACS_A") == {a.study.study_uid}
        assert findscu(server, "PACS_B") == {b.study.study_uid}
        assert findscu(server, "STRANGER") == set()  # unknown AE: refused (0x0124), nothing listed
        got, log = getscu(server, "PACS_A", b.study.study_uid, tmp_path / "get-b")
        assert got == 0, log
        got, log = getscu(server, "PACS_A", a.study.study_uid, tmp_path / "get-a")
        assert got == 3, log
        # C-MOVE of B's study by A to A's own receiver: nothing arrives
        port = free_port()
        receiver = tmp_path / "moved"
        receiver.mkdir()
        storescp = subprocess.Popen(["storescp", "-aet", "RECEIVER_A", "-od", str(receiver), str(port)], env=DCMTK)
        try:
            server.stop()
            server.env["YUNYING_REMOTE_AES"] = f'["RECEIVER_A@127.0.0.1:{port}"]'
            server.start()
            moved = subprocess.run(["movescu", "-S", "-aet", "PACS_A", "-aem", "RECEIVER_A", "-aec", server.ae_title,
                                    "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={b.study.study_uid}",
                                    "127.0.0.1", str(server.dicom_port)], capture_output=True, text=True, timeout=60,
                                   env=DCMTK)
            assert list(receiver.iterdir()) == [], moved.stdout + moved.stderr
            # with a grant to hospital A, exactly the granted study
            grant_study(archive.sessions, kind="consultation", study_uid=b.study.study_uid, granted_by=None,
                        to_institution=a.institution_id)
            assert findscu(server, "PACS_A") == {a.study.study_uid, b.study.study_uid}
            moved = subprocess.run(["movescu", "-S", "-aet", "PACS_A", "-aem", "RECEIVER_A", "-aec", server.ae_title,
                                    "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={b.study.study_uid}",
                                    "127.0.0.1", str(server.dicom_port)], capture_output=True, text=True, timeout=60,
                                   env=DCMTK)
            assert len(list(receiver.iterdir())) == 3, moved.stdout + moved.stderr
        finally:
            storescp.terminate()
            storescp.wait(10)
    finally:
        archive.close()
