"""Viewer annotations API (VW-5) on SQLite and PostgreSQL: round trip, optimistic concurrency, isolation, SR export."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import highdicom as hd
import httpx
import pydicom
import pytest

from tests.security.conftest import Tenant, direct, make_tenant
from tests.support.server import ServerProcess
from yunying.auth.access import Role

pytestmark = pytest.mark.timeout(300)


def _url(server: ServerProcess, study_uid: str, suffix: str = "") -> str:
    return f"{server.url}/api/studies/{study_uid}/annotations{suffix}"


def _document(sop_uids: list[str], version: int) -> dict[str, object]:
    return {
        "version": version,
        "annotations": [
            {"uid": "len-1", "tool": "Length", "sop_instance_uid": sop_uids[1], "points": [[10.5, 20.0], [110.5, 20.0]],
             "world_points": [[-100.0, -50.0, 12.5], [-30.0, -50.0, 12.5]],
             "measurements": [{"name": "length", "value": 70.25, "unit": "mm"}], "state": {"any": ["viewer", "data"]}},
            {"uid": "txt-1", "tool": "ArrowAnnotate", "sop_instance_uid": sop_uids[2], "points": [[50.0, 60.0], [80.0, 90.0]],
             "text": "nodule 右上叶"},
            {"uid": "free-1", "tool": "PlanarFreehandROI", "sop_instance_uid": sop_uids[0],
             "points": [[1.0, 1.0], [5.0, 1.0], [5.0, 5.0]]},
        ],
        "key_images": [{"sop_instance_uid": sop_uids[2]}],
    }


@pytest.fixture
def hospitals(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> tuple[ServerProcess, Tenant, Tenant]:
    server = server_factory(open_dicom=False)
    a = make_tenant(server, "ann-a", tmp_path, [Role.TECHNICIAN, Role.RADIOLOGIST, Role.CLINICIAN, Role.AUDITOR])
    b = make_tenant(server, "ann-b", tmp_path, [Role.TECHNICIAN, Role.RADIOLOGIST])
    return server, a, b


def test_round_trip_conflict_isolation_and_audit(hospitals: tuple[ServerProcess, Tenant, Tenant]) -> None:
    server, a, b = hospitals
    assert a.study is not None and b.study is not None
    study, sops = a.study.study_uid, a.study.sop_uids
    rad, clinician = a.headers(Role.RADIOLOGIST), a.headers(Role.CLINICIAN)

    empty = httpx.get(_url(server, study), headers=rad, timeout=30)
    assert empty.status_code == 200 and empty.json()["version"] == 0 and empty.json()["annotations"] == []

    saved = httpx.put(_url(server, study), headers=rad, json=_document(sops, 0), timeout=30)
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 1 and saved.headers["etag"] == '"1"'
    again = httpx.get(_url(server, study), headers=rad, timeout=30).json()
    assert again["version"] == 1
    assert [x["uid"] for x in again["annotations"]] == ["len-1", "txt-1", "free-1"]
    assert again["annotations"][0]["state"] == {"any": ["viewer", "data"]}
    assert again["annotations"][1]["text"] == "nodule 右上叶"
    assert again["key_images"] == [{"sop_instance_uid": sops[2], "frame": None}]

    # a second save based on version 1 wins; a stale one (still based on 1) is refused with 409
    second = httpx.put(_url(server, study), headers=rad, json={**_document(sops, 1), "key_images": []}, timeout=30)
    assert second.status_code == 200 and second.json()["version"] == 2
    stale = httpx.put(_url(server, study), headers=rad, json=_document(sops, 1), timeout=30)
    assert stale.status_code == 409 and stale.headers["content-type"].startswith("application/problem+json")
    assert stale.json()["current_version"] == 2
    by_header = httpx.put(_url(server, study), headers={**rad, "If-Match": '"1"'}, json=_document(sops, 2), timeout=30)
    assert by_header.status_code == 409  # If-Match wins over the body's version
    assert httpx.get(_url(server, study), headers=rad, timeout=30).json()["key_images"] == []

    # another user of the same hospital sees nothing of it (and keeps a document of their own)
    other = httpx.get(_url(server, study), headers=clinician, timeout=30)
    assert other.status_code == 200 and other.json()["version"] == 0 and other.json()["annotations"] == []
    assert httpx.put(_url(server, study), headers=clinician, json={"version": 0}, timeout=30).status_code == 200
    assert httpx.get(_url(server, study), headers=rad, timeout=30).json()["version"] == 2

    # another hospital's reader: the study does not exist for them, whatever the verb
    for method in ("GET", "PUT", "DELETE"):
        answer = httpx.request(method, _url(server, study), headers=b.headers(Role.RADIOLOGIST),
                               json=_document(sops, 0) if method == "PUT" else None, timeout=30)
        assert answer.status_code == 404, (method, answer.text)
        assert "nodule" not in answer.text
    assert httpx.get(_url(server, study, "/sr"), headers=b.headers(Role.RADIOLOGIST), timeout=30).status_code == 404
    # an auditor (no study:read) may not touch annotations at all
    assert httpx.get(_url(server, study), headers=a.headers(Role.AUDITOR), timeout=30).status_code == 403

    # delete: a stale If-Match is refused, then the document is gone
    assert httpx.delete(_url(server, study), headers={**rad, "If-Match": '"1"'}, timeout=30).status_code == 409
    assert httpx.delete(_url(server, study), headers=rad, timeout=30).status_code == 204
    assert httpx.get(_url(server, study), headers=rad, timeout=30).json()["version"] == 0

    archive = direct(server)
    try:
        with archive.sessions() as session:
            from sqlalchemy import select

            from yunying.index.models import AuditEvent
            rows = session.execute(select(AuditEvent.actor, AuditEvent.action, AuditEvent.outcome, AuditEvent.subject)
                                   .where(AuditEvent.action.like("annotations-%"))).all()
    finally:
        archive.close()
    actions = {(actor, action, outcome) for actor, action, outcome, _s in rows}
    assert ("radiologist-ann-a", "annotations-write", "success") in actions
    assert ("radiologist-ann-a", "annotations-write", "conflict") in actions
    assert ("radiologist-ann-a", "annotations-read", "success") in actions
    assert ("radiologist-ann-a", "annotations-delete", "success") in actions
    assert ("radiologist-ann-a", "annotations-export", "success") not in actions  # no export happened yet
    assert all(subject == study for *_r, subject in rows)


def _invalid_bodies_are_problems(server: ServerProcess, a: Tenant) -> None:
    assert a.study is not None
    study, rad = a.study.study_uid, a.headers(Role.RADIOLOGIST)
    not_json = httpx.put(_url(server, study), headers={**rad, "Content-Type": "application/json"}, content=b"{nope", timeout=30)
    assert not_json.status_code == 400 and not_json.headers["content-type"].startswith("application/problem+json")
    bad = [
        {"version": "0"},  # a string is not a version
        {"annotations": [{"uid": "x"}]},  # no tool
        {"annotations": [{"uid": "x", "tool": "Length", "points": [[1.0]]}]},  # a point needs two coordinates
        {"annotations": [{"uid": "x", "tool": "Length", "sop_instance_uid": "1.2.<script>"}]},
        {"annotations": [{"uid": "x", "tool": "Length", "measurements": [{"name": "length", "value": "12"}]}]},
        {"key_images": [{"sop_instance_uid": "1.2.3", "frame": 0}]},
        {"unexpected": True},
    ]
    for body in bad:
        answer = httpx.put(_url(server, study), headers=rad, json=body, timeout=30)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["title"] == "Invalid request"
    # an instance that is not part of the study
    foreign = httpx.put(_url(server, study), headers=rad, timeout=30,
                        json={"key_images": [{"sop_instance_uid": "1.2.3.4.5"}]})
    assert foreign.status_code == 422 and "not part of the study" in foreign.json()["detail"]
    assert httpx.get(_url(server, "1.2.3.999"), headers=rad, timeout=30).status_code == 404
    assert httpx.get(_url(server, study), headers={**rad, "If-Match": "x"}, timeout=30).status_code == 200


def test_invalid_bodies_then_sr_export(hospitals: tuple[ServerProcess, Tenant, Tenant]) -> None:
    """Bad bodies are problems (400/422) and change nothing; the SR parses and references the right images."""
    server, a, _b = hospitals
    assert a.study is not None
    _invalid_bodies_are_problems(server, a)
    assert httpx.get(_url(server, a.study.study_uid), headers=a.headers(Role.RADIOLOGIST), timeout=30).json()["version"] == 0
    study, sops, rad = a.study.study_uid, a.study.sop_uids, a.headers(Role.RADIOLOGIST)
    assert httpx.put(_url(server, study), headers=rad, json=_document(sops, 0), timeout=30).status_code == 200
    answer = httpx.get(_url(server, study, "/sr"), headers=rad, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/dicom"
    assert "attachment" in answer.headers["content-disposition"]
    ds = pydicom.dcmread(io.BytesIO(answer.content))
    assert ds.Modality == "SR" and ds.StudyInstanceUID == study
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
    source = pydicom.dcmread(a.study.files[0], stop_before_pixels=True)
    assert ds.PatientID == source.PatientID
    assert ds.SOPInstanceUID not in sops  # a new instance; the originals are untouched
    sr = hd.sr.ComprehensiveSR.from_dataset(ds)

    nums = hd.sr.utils.find_content_items(sr, value_type=hd.sr.ValueTypeValues.NUM, recursive=True)
    assert len(nums) == 1
    value = nums[0].MeasuredValueSequence[0]
    assert float(value.NumericValue) == pytest.approx(70.25)
    assert value.MeasurementUnitsCodeSequence[0].CodeValue == "mm"
    assert value.MeasurementUnitsCodeSequence[0].CodingSchemeDesignator == "UCUM"
    assert nums[0].ConceptNameCodeSequence[0].CodeMeaning == "Length"
    length_image = hd.sr.utils.find_content_items(nums[0], value_type=hd.sr.ValueTypeValues.IMAGE, recursive=True)
    assert [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in length_image] == [sops[1]]

    texts = hd.sr.utils.find_content_items(sr, value_type=hd.sr.ValueTypeValues.TEXT, recursive=True)
    assert [t.TextValue for t in texts] == ["nodule 右上叶"]
    images = hd.sr.utils.find_content_items(sr, value_type=hd.sr.ValueTypeValues.IMAGE, recursive=True)
    keys = [i for i in images if i.ConceptNameCodeSequence[0].CodeMeaning == "Key Images"]
    assert [k.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for k in keys] == [sops[2]]
    referenced = {i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in images}
    assert referenced == {sops[0], sops[1], sops[2]}
    evidence = {item.ReferencedSOPInstanceUID for series in ds.CurrentRequestedProcedureEvidenceSequence
                for s in series.ReferencedSeriesSequence for item in s.ReferencedSOPSequence}
    assert referenced <= evidence
    scoords = hd.sr.utils.find_content_items(sr, value_type=hd.sr.ValueTypeValues.SCOORD, recursive=True)
    assert len(scoords) == 3  # length, text, freehand
    # the stored study still has exactly its own instances
    instances = httpx.get(f"{server.dicomweb}/studies/{study}/instances", headers=rad, timeout=30).json()
    assert len(instances) == len(sops)
