"""HL7 v2 ORU^R01 messages as a RIS sends them (segments joined by CR), and mllp_send as the client."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

MLLP_SEND = str(Path(sys.executable).parent / "mllp_send")  # python-hl7's command-line client, not our code
PATIENT_ID = "PIDSENTINEL4711"
PATIENT_NAME = "Sentinelname^Hl7"


def oru(control_id: str, accession: str, status: str = "F", *, facility: str = "RIS_A", version: str = "2.5",
        message_type: str = "ORU^R01", findings: str = "No acute cardiopulmonary process.",
        impression: str = "Normal chest.", study_uid: str = "", with_obr: bool = True) -> str:
    """One ORU^R01: PID, OBR (OBR-18 accession, OBR-25 status, OBR-32 interpreter), two OBX (findings, impression)."""
    segments = [
        f"MSH|^~\\&|RIS|{facility}|YUNYING|CLOUD|20261122101500+0800||{message_type}|{control_id}|P|{version}"
        "|||||CHN|UNICODE UTF-8",
        f"PID|1||{PATIENT_ID}^^^HOSP_A^MR||{PATIENT_NAME}||19600101|M",
    ]
    if with_obr:
        obr = ["OBR", "1", f"PL-{accession}", f"FL-{accession}", "71020^Chest X-ray^L", "", "", "20261122093000+0800"]
        obr += [""] * (18 - len(obr)) + [accession]  # OBR-18 placer field 1: accession number
        obr += [""] * (22 - len(obr)) + ["20261122101000+0800"]  # OBR-22 results report time
        obr += [""] * (25 - len(obr)) + [status]  # OBR-25 result status
        obr += [""] * (32 - len(obr)) + ["D001&Wang&Wei"]  # OBR-32 principal result interpreter
        segments.append("|".join(obr))
    segments.append(f"OBX|1|TX|59776-5^Findings^LN||{findings}||||||{status}")
    segments.append(f"OBX|2|TX|19005-8^Impression^LN||{impression}||||||{status}")
    if study_uid:
        segments.append(f"ZDS|{study_uid}^YUNYING^Application^DICOM")
    return "\r".join(segments)


def send(port: int, messages: list[str], tmp: Path) -> list[tuple[str, str]]:
    """Send ``messages`` on one connection with mllp_send; return (MSA-1, MSA-2) of each ACK in order."""
    path = tmp / f"batch-{abs(hash(tuple(messages)))}.hl7"
    path.write_text("\n".join(m.replace("\r", "\n") for m in messages) + "\n", encoding="utf-8")
    done = subprocess.run([MLLP_SEND, "--loose", "-f", str(path), "-p", str(port), "127.0.0.1"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return re.findall(r"MSA\|(A[AER])\|([^|\r\n]*)", done.stdout)


def ack_lines(port: int, message: str, tmp: Path) -> str:
    path = tmp / "one.hl7"
    path.write_text(message.replace("\r", "\n") + "\n", encoding="utf-8")
    done = subprocess.run([MLLP_SEND, "--loose", "-f", str(path), "-p", str(port), "127.0.0.1"], capture_output=True,
                          text=True, timeout=60, check=False)
    return done.stdout
