"""Downloads and anonymous shares over the real HTTP app, on SQLite and PostgreSQL, with a real study.

A Siemens enhanced MR study (13 instances, 7 MB, private tags) plus one copy flagged Burned In
Annotation = YES. Proves: a forced small part size gives several parts, each an AES-256 ZIP that
``7z`` opens with the password (and refuses with a wrong one), each with its own DICOMDIR that pydicom
and dcmtk read and that references every file in the part; together the parts hold every instance,
byte for byte as archived; only the maker may see or fetch the download; fetches are audited.
The visitor of an anonymous share (a real ``Principal`` with ``extra["anonymous"] == "1"``, put on
the request as authentication would) gets de-identified metadata, instances, renderings and
downloads, names the study by its replaced UIDs, and never sees the burned-in image. Expired
downloads are purged: parts gone, 410.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydicom import dcmread
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid
from sqlalchemy import select

from tests.support.archive import default_institution
from tests.support.data import SHARED
from yunying.api.app import create_app
from yunying.api.routes.downloads import service
from yunying.auth.access import SHARE_STUDIES, Principal, Role
from yunying.auth.credentials import create_token, create_user, institution_id
from yunying.compose import Archive
from yunying.deid import for_principal
from yunying.exports.package import UNAMBIGUOUS_CHARACTERS
from yunying.index.models import AuditEvent, Institution, Study

pytestmark = pytest.mark.timeout(600)
STUDY_DIR = SHARED / "mr_siemens_xa30_enhanced_study"
PART_BYTES = 3_600_000
ORIGINAL_NAME = b"XAtest"


@pytest.fixture
def loaded(archive: Archive, tmp_path: Path) -> dict[str, Any]:
    """The study (and a burned-in copy of one image) in the default hospital; a doctor there and elsewhere."""
    home = default_institution(archive)
    files = sorted(p for p in STUDY_DIR.rglob("*") if p.is_file())
    for path in files:
        assert archive.ingest.store_instance(path.read_bytes(), "test", institution_id=home).ok
    burned = dcmread(files[0])
    burned.SOPInstanceUID = burned.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    burned.BurnedInAnnotation = "YES"
    buffer = BytesIO()
    burned.save_as(buffer, enforce_file_format=True)
    assert archive.ingest.store_instance(buffer.getvalue(), "test", institution_id=home).ok
    with archive.sessions() as session:
        session.add(Institution(code="other", name="Other hospital"))
        session.commit()
    create_user(archive.sessions, "doc", "Yy-Pass-word-123", [Role.CLINICIAN], institution=home)
    create_user(archive.sessions, "stranger", "Yy-Pass-word-123", [Role.CLINICIAN],
                institution=institution_id(archive.sessions, "other"))
    archive.settings.download_part_bytes = PART_BYTES
    study = str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    return {"study": study, "burned": str(burned.SOPInstanceUID), "home": home,
            "doc": {"Authorization": "Bearer " + create_token(archive.sessions, "doc", "t")},
            "stranger": {"Authorization": "Bearer " + create_token(archive.sessions, "stranger", "t")}}


def visitor_app(archive: Archive, visitor: Principal) -> Any:
    """The real app; requests marked ``x-test-visitor`` arrive authenticated as ``visitor`` (share sessions
    are another module's: this stands where its cookie check will put the principal)."""
    app = create_app(archive)

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (b"x-test-visitor", b"1") in scope["headers"]:
            scope.setdefault("state", {})["principal"] = visitor
        await app(scope, receive, send)

    return wrapped


@pytest.fixture
def client(archive: Archive, loaded: dict[str, Any]) -> Iterator[tuple[TestClient, Principal]]:
    with archive.sessions() as session:  # a share of the hospital's studies (the share's scope: these ids)
        ids = session.execute(select(Study.id).where(Study.institution_fk == loaded["home"])).scalars().all()
    visitor = Principal(None, "share-visitor", frozenset({Role.SHARE_VIEWER}), None, "share:s1",
                        extra={"share": "s1", "anonymous": "1", SHARE_STUDIES: ",".join(map(str, ids))})
    with TestClient(visitor_app(archive, visitor)) as c:
        yield c, visitor


def fetch_and_open(client: TestClient, headers: dict[str, str], made: dict[str, Any], tmp: Path) -> list[Path]:
    """Every part fetched, tested and extracted with 7z; the extracted folders."""
    folders = []
    for part in made["parts"]:
        response = client.get(part["url"], headers=headers)
        assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
        assert len(response.content) == part["size"] <= PART_BYTES
        zipped = tmp / f"{made['id']}-{part['n']}.zip"
        zipped.write_bytes(response.content)
        assert subprocess.run(["7z", "t", f"-p{made['password']}", str(zipped)], capture_output=True).returncode == 0
        wrong = subprocess.run(["7z", "t", "-pWrongPassw0rd", str(zipped)], capture_output=True)
        assert wrong.returncode != 0
        folder = tmp / f"{made['id']}-{part['n']}"
        done = subprocess.run(["7z", "x", f"-p{made['password']}", f"-o{folder}", str(zipped)], capture_output=True)
        assert done.returncode == 0, done.stderr
        folders.append(folder)
    return folders


def read_fileset(folder: Path) -> dict[str, bytes]:
    """SOP Instance UID → file bytes of every instance the part's DICOMDIR references (checked by dcmtk too)."""
    dump = subprocess.run(["dcmdump", str(folder / "DICOMDIR")], capture_output=True, text=True)
    assert dump.returncode == 0 and "DirectoryRecordSequence" in dump.stdout
    fileset = FileSet(folder / "DICOMDIR")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "DICOMDIR")
    assert len(fileset) == len(files) > 0  # every file referenced, no stray file
    found = {}
    for instance in fileset:
        parts = instance.FileID.split("\\") if "\\" in instance.FileID else Path(instance.FileID).parts
        assert all(len(c) <= 8 and c.isalnum() and c.upper() == c for c in parts)  # ISO 9660 file IDs
        path = folder.joinpath(*parts)
        check = subprocess.run(["dcmftest", str(path)], capture_output=True, text=True)
        assert check.stdout.startswith("yes"), check.stdout
        found[str(instance.SOPInstanceUID)] = path.read_bytes()
    return found


def test_download_parts_dicomdir_and_access(archive: Archive, loaded: dict[str, Any],
                                            client: tuple[TestClient, Principal], tmp_path: Path) -> None:
    http, _ = client
    doc, stranger, study = loaded["doc"], loaded["stranger"], loaded["study"]
    assert http.post(f"/api/studies/{study}/downloads", headers=stranger).status_code == 404  # not in their scope
    response = http.post(f"/api/studies/{study}/downloads", headers=doc)
    assert response.status_code == 202, response.text
    made = response.json()
    assert made["state"] == "ready" and made["anonymous"] is False and made["withheld"] == 0
    assert len(made["password"]) == 12 and set(made["password"]) <= set(UNAMBIGUOUS_CHARACTERS)
    assert len(made["parts"]) >= 2 and made["total_size"] == sum(p["size"] for p in made["parts"])
    assert datetime.fromisoformat(made["valid_until"]) > datetime.now(UTC) + timedelta(hours=71)

    shown = http.get(f"/api/downloads/{made['id']}", headers=doc)
    assert shown.status_code == 200 and "password" not in shown.json() and shown.json()["parts"] == made["parts"]
    for other in (stranger, {"x-test-visitor": "1"}):  # another hospital's doctor, a share visitor: not theirs
        assert http.get(f"/api/downloads/{made['id']}", headers=other).status_code == 404
        assert http.get(made["parts"][0]["url"], headers=other).status_code == 404
    assert http.get(made["parts"][0]["url"]).status_code == 401

    archived = {i.sop_uid: archive.retrieve.read(i) for i in archive.retrieve.list(_everything(), study)}
    packed: dict[str, bytes] = {}
    for folder in fetch_and_open(http, doc, made, tmp_path):
        part = read_fileset(folder)
        assert not set(part) & set(packed)  # each instance in exactly one part
        packed.update(part)
    assert packed == archived  # every instance, byte for byte as archived (pixel data included)

    with archive.sessions() as session:
        audited = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "download",
                                                                  AuditEvent.subject == study)).all()
    assert len(audited) == 2 + len(made["parts"]) and "instance(s)" in audited[0]  # made, status, each part

    # Expiry: the parts are deleted and the download answers 410.
    assert service(archive).purge(datetime.now(UTC) + timedelta(days=4)) == 1
    assert list(archive.blobs.iter_blobs("exports")) == []
    assert http.get(f"/api/downloads/{made['id']}", headers=doc).status_code == 410
    assert http.get(made["parts"][0]["url"], headers=doc).status_code == 410


def test_anonymous_share_sees_only_deidentified_data(archive: Archive, loaded: dict[str, Any],
                                                    client: tuple[TestClient, Principal], tmp_path: Path) -> None:
    http, visitor = client
    study, visit = loaded["study"], {"x-test-visitor": "1"}
    deid = for_principal(visitor, archive.settings, archive.blobs)
    assert deid is not None
    instances = archive.retrieve.list(_everything(), study)
    pseudo = deid.uid(study)

    metadata = http.get(f"/dicom-web/studies/{pseudo}/metadata", headers=visit)
    assert metadata.status_code == 200, metadata.text
    items = metadata.json()
    assert len(items) == len(instances) - 1  # the burned-in image is withheld
    assert ORIGINAL_NAME.decode() not in metadata.text and study not in metadata.text
    assert {i["0020000D"]["Value"][0] for i in items} == {pseudo}
    assert all(i["00120062"]["Value"] == ["YES"] for i in items)
    doctor_view = http.get(f"/dicom-web/studies/{study}/metadata", headers=loaded["doc"])
    assert ORIGINAL_NAME.decode() in doctor_view.text  # the same study, identified, for its hospital's doctor

    normal = next(i for i in instances if i.sop_uid != loaded["burned"])
    burned = next(i for i in instances if i.sop_uid == loaded["burned"])
    path = f"/dicom-web/studies/{pseudo}/series/{deid.uid(normal.series_uid)}/instances/{deid.uid(normal.sop_uid)}"
    one = http.get(path, headers=visit)
    assert one.status_code == 200
    start = one.content.index(b"DICM") - 128
    ds = dcmread(BytesIO(one.content[start:one.content.rindex(b"\r\n--")]))
    assert ds.PatientIdentityRemoved == "YES" and ds.SOPInstanceUID == deid.uid(normal.sop_uid)
    assert ds.PixelData == dcmread(BytesIO(archive.retrieve.read(normal))).PixelData
    assert http.get(path + "/rendered", headers=visit).status_code == 200
    burned_path = f"/dicom-web/studies/{pseudo}/series/{deid.uid(burned.series_uid)}/instances/{deid.uid(burned.sop_uid)}"
    for suffix in ("", "/rendered", "/thumbnail", "/frames/1"):
        assert http.get(burned_path + suffix, headers=visit).status_code == 403, suffix

    made = http.post(f"/api/studies/{pseudo}/downloads", headers=visit).json()
    assert made["anonymous"] is True and made["withheld"] == 1 and made["instances"] == len(instances) - 1
    assert http.get(f"/api/downloads/{made['id']}", headers=loaded["doc"]).status_code == 404  # the share's, not his
    originals = {deid.uid(i.sop_uid): archive.retrieve.read(i) for i in instances}
    count = 0
    for folder in fetch_and_open(http, visit, made, tmp_path):
        for sop, data in read_fileset(folder).items():
            assert ORIGINAL_NAME not in data and study.encode() not in data
            produced = dcmread(BytesIO(data))
            assert produced.PatientIdentityRemoved == "YES" and produced.StudyInstanceUID == pseudo
            assert produced.PixelData == dcmread(BytesIO(originals[sop])).PixelData  # pixels as archived
            count += 1
    assert count == len(instances) - 1


def _everything() -> Any:
    from yunying.index.access import Scope

    return Scope.all()
