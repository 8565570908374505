"""The reports use cases on a real index (SQLite and PostgreSQL), through the real ingest path.

Proves: a report waiting for its images is linked only to a study of its own institution (matching
accession + institution), an accession of another hospital is not confused with it; a repeated
delivery adds no version; versions are never rewritten; visibility follows the study's scope.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.archive import default_institution
from tests.support.gateway_data import make_study
from yunying.compose import Archive
from yunying.errors import NotFound
from yunying.index.access import Scope
from yunying.index.models import Institution
from yunying.reports import service
from yunying.reports.service import ReportInput, Source, Status


def _other_institution(archive: Archive) -> int:
    with archive.sessions() as session:
        other = Institution(code="other", name="Other hospital")
        session.add(other)
        session.commit()
        return other.id


def test_linking_matches_accession_within_the_institution(archive: Archive, tmp_path: Path) -> None:
    own, other = default_institution(archive), _other_institution(archive)
    mine = service.receive(archive.sessions, ReportInput(own, Status.FINAL, Source.HL7, accession_number="ACC-1",
                                                         findings="mine", source_ref="m1"))
    theirs = service.receive(archive.sessions, ReportInput(other, Status.FINAL, Source.HL7, accession_number="ACC-1",
                                                           findings="theirs", source_ref="t1"))
    assert mine.id != theirs.id and not mine.linked
    study = make_study(tmp_path / "s", 1, accession="ACC-1")
    stored = archive.ingest.store_instance(study.files[0].read_bytes(), origin="test", institution_id=own)
    assert stored.ok
    assert service.get(archive.sessions, mine.id, Scope(None, own)).study_uid == study.study_uid
    assert not service.get(archive.sessions, theirs.id, Scope.all()).linked  # another hospital's accession
    with pytest.raises(NotFound):
        service.get(archive.sessions, mine.id, Scope(None, other))
    assert service.get(archive.sessions, theirs.id, Scope(None, other)).current.findings == "theirs"


def test_repeated_delivery_and_immutable_versions(archive: Archive) -> None:
    own = default_institution(archive)
    first = ReportInput(own, Status.PRELIMINARY, Source.HL7, accession_number="ACC-2", findings="v1", source_ref="c1")
    service.receive(archive.sessions, first)
    again = service.receive(archive.sessions, first)
    assert again.current.version == 1 and not again.created
    service.receive(archive.sessions, ReportInput(own, Status.FINAL, Source.HL7, accession_number="ACC-2",
                                                  findings="v2", source_ref="c2"))
    view, versions = service.history(archive.sessions, again.id, Scope(None, own))
    assert [(v.version, v.status, v.findings) for v in versions] == [(1, "preliminary", "v1"), (2, "final", "v2")]
    assert view.current.version == 2
    with pytest.raises(service.ReportConflict):
        service.receive(archive.sessions, ReportInput(own, Status.PRELIMINARY, Source.HL7, accession_number="ACC-2",
                                                      source_ref="c3"))


def test_final_listeners_run_once_the_report_is_final_and_linked(archive: Archive, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The cloud film starts from here: a preliminary report or one without images calls no listener."""
    from yunying.reports import events

    seen: list[tuple[int, str]] = []
    monkeypatch.setattr(events, "ON_FINAL", [lambda session, report: seen.append((report.id, report.status))])
    own = default_institution(archive)
    early = service.receive(archive.sessions, ReportInput(own, Status.FINAL, Source.HL7, accession_number="ACC-E",
                                                          source_ref="e1"))
    assert seen == []  # final, but its images are not here yet
    study = make_study(tmp_path / "s", 1, accession="ACC-E")
    assert archive.ingest.store_instance(study.files[0].read_bytes(), origin="test", institution_id=own).ok
    assert seen == [(early.id, "final")]  # linked by the study's arrival
    other = make_study(tmp_path / "t", 1, accession="ACC-P")
    assert archive.ingest.store_instance(other.files[0].read_bytes(), origin="test", institution_id=own).ok
    late = service.receive(archive.sessions, ReportInput(own, Status.PRELIMINARY, Source.HL7,
                                                         accession_number="ACC-P", source_ref="p1"))
    assert seen == [(early.id, "final")]
    service.receive(archive.sessions, ReportInput(own, Status.FINAL, Source.HL7, accession_number="ACC-P",
                                                  source_ref="p2"))
    assert seen[-1] == (late.id, "final")
