"""Query use case shared by C-FIND and QIDO-RS: matching rows → DICOM JSON per level."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from yunying.index.access import Scope
from yunying.index.models import Instance, Patient, Series, Study
from yunying.index.queries import count_query, run_query

JsonDataset = dict[str, dict[str, Any]]


def _el(vr: str, *values: Any) -> dict[str, Any]:
    present = [v for v in values if v is not None and v != ""]
    return {"vr": vr, "Value": present} if present else {"vr": vr}


def _attrs(stored: dict[str, object] | None) -> JsonDataset:
    return {str(k): v for k, v in (stored or {}).items() if isinstance(v, dict)}


def patient_json(patient: Patient) -> JsonDataset:
    out: JsonDataset = _attrs(patient.attrs)
    out.setdefault("00100020", _el("LO", patient.patient_id))
    out["00201200"] = _el("IS", patient.n_studies)
    return out


def study_json(study: Study, patient: Patient) -> JsonDataset:
    out = _attrs(patient.attrs)
    out.update(_attrs(study.attrs))
    out["0020000D"] = _el("UI", study.study_uid)
    out["00080061"] = _el("CS", *[m for m in (study.modalities or "").split("\\") if m])
    out["00201206"] = _el("IS", study.n_series)
    out["00201208"] = _el("IS", study.n_instances)
    out["00080056"] = _el("CS", "ONLINE")
    return out


def series_json(series: Series, study: Study, patient: Patient) -> JsonDataset:
    out = study_json(study, patient)
    for tag in ("00080061", "00201206", "00201208"):
        out.pop(tag, None)
    out.update(_attrs(series.attrs))
    out["0020000E"] = _el("UI", series.series_uid)
    out["00201209"] = _el("IS", series.n_instances)
    return out


def instance_json(instance: Instance, series: Series, study: Study, patient: Patient) -> JsonDataset:
    out = series_json(series, study, patient)
    out.pop("00201209", None)
    out["00080016"] = _el("UI", instance.sop_class_uid)
    out["00080018"] = _el("UI", instance.sop_uid)
    out["00200013"] = _el("IS", instance.instance_number)
    out["00280010"] = _el("US", instance.rows)
    out["00280011"] = _el("US", instance.columns)
    out["00280100"] = _el("US", instance.bits_allocated)
    out["00280008"] = _el("IS", instance.number_of_frames)
    out["00020010"] = _el("UI", instance.transfer_syntax_uid)
    return out


@dataclass
class QueryResult:
    level: str
    rows: list[JsonDataset] = field(default_factory=list)
    uids: list[tuple[str, ...]] = field(default_factory=list)  # (study, series, sop) per row, for URLs


class QueryService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def find(self, scope: Scope, level: str, filters: dict[str, str], *, fuzzy: bool = False,
             limit: int | None = None, offset: int = 0) -> QueryResult:
        """Matches ``scope`` may see (other institutions' data is neither returned nor counted)."""
        result = QueryResult(level)
        with self.sessions() as session:
            for row in run_query(session, level, filters, scope, fuzzy=fuzzy, limit=limit, offset=offset):
                if level == "PATIENT":
                    result.rows.append(patient_json(row[0]))
                    result.uids.append(())
                elif level == "STUDY":
                    result.rows.append(study_json(row[0], row[1]))
                    result.uids.append((row[0].study_uid,))
                elif level == "SERIES":
                    result.rows.append(series_json(row[0], row[1], row[2]))
                    result.uids.append((row[1].study_uid, row[0].series_uid))
                else:
                    result.rows.append(instance_json(row[0], row[1], row[2], row[3]))
                    result.uids.append((row[2].study_uid, row[1].series_uid, row[0].sop_uid))
        return result

    def count(self, scope: Scope, level: str, filters: dict[str, str], *, fuzzy: bool = False) -> int:
        with self.sessions() as session:
            return count_query(session, level, filters, scope, fuzzy=fuzzy)
