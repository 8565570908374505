"""Identity-field protection before upload (GW-7, GW-11) on real files, Chinese names included."""

from __future__ import annotations

import base64
import hmac
import logging
import re
from io import BytesIO
from pathlib import Path

import pydicom
import pytest

from yunying.gateway.protect import (
    DEIDENTIFICATION_METHOD,
    Action,
    ProtectionRule,
    Protector,
    parse_rules,
)

DATA = Path("/work/shared/dicom")
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared DICOM test data not available")

MR = "transfer_syntax_matrix_siemens_mr/1.dcm"  # real MR (ISO_IR 100) with name, ID, birth date, institution
TCIA_CT = "ct_abdomen_pancreas_tcia/1-001.dcm"  # already carries a De-identification Method
SECRET = b"0123456789abcdef0123456789abcdef"
PSEUDONYM = re.compile(r"^[A-Z2-7]{16}$")
RULES = ["PatientID=hash", "PatientName=hash", "OtherPatientIDs=remove", "InstitutionName=replace:某医院",
         "PatientBirthDate=empty", "StudyDescription=keep"]
IDENTITY_MARKS = {"PatientIdentityRemoved", "DeidentificationMethod"}


def read(rel: str) -> bytes:
    return (DATA / rel).read_bytes()


def parse(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(BytesIO(data))


def protector(*specs: str, secret: bytes = SECRET, algorithm: str = "sha256") -> Protector:
    return Protector(parse_rules(specs), secret, algorithm)


def with_other_ids(rel: str) -> bytes:
    """The file with Other Patient IDs holding its own Patient ID and one more (to test multi-valued hashing)."""
    ds = parse(read(rel))
    ds.OtherPatientIDs = [ds.PatientID, "SECOND-ID"]
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def unchanged_keywords(before: pydicom.Dataset, after: pydicom.Dataset, changed: set[str]) -> None:
    for element in before:
        if element.keyword in changed or element.tag.element == 0:  # group lengths (retired) are not rewritten
            continue
        assert element.tag in after, element.keyword
        assert after[element.tag].value == element.value, element.keyword
    assert {e.keyword for e in after if e.tag not in before} <= changed


# -- rules --------------------------------------------------------------------------------------------------


def test_parse_rules_reads_every_action() -> None:
    rules = parse_rules(["PatientID=hash", " OtherPatientIDs = remove", "InstitutionName=replace:某医院:东院",
                         "PatientBirthDate=EMPTY", "StudyDescription=keep"])
    assert rules == [
        ProtectionRule("PatientID", Action.HASH),
        ProtectionRule("OtherPatientIDs", Action.REMOVE),
        ProtectionRule("InstitutionName", Action.REPLACE, "某医院:东院"),
        ProtectionRule("PatientBirthDate", Action.EMPTY),
        ProtectionRule("StudyDescription", Action.KEEP),
    ]


@pytest.mark.parametrize(("spec", "named"), [
    ("PatientIdentifier=hash", "PatientIdentifier"),  # not a DICOM keyword
    ("PatientID=scramble", "scramble"),  # not an action
    ("PatientID", "PatientID"),  # no action
    ("=hash", "=hash"),
    ("PatientID=hash:abc", "takes no value"),
    ("OtherPatientIDsSequence=hash", "OtherPatientIDsSequence"),  # a sequence cannot hold a pseudonym
    ("Rows=replace:1", "Rows"),  # binary VR
    ("SOPInstanceUID=remove", "SOPInstanceUID"),  # the instance's identity
    ("SpecificCharacterSet=empty", "SpecificCharacterSet"),
    ("TransferSyntaxUID=remove", "TransferSyntaxUID"),  # file meta
    ("PixelData=remove", "PixelData"),
])
def test_parse_rules_errors_name_the_bad_part(spec: str, named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        parse_rules([spec])


def test_two_rules_for_one_keyword_are_refused() -> None:
    with pytest.raises(ValueError, match="more than one rule"):
        parse_rules(["PatientID=hash", "PatientID=remove"])


def test_hash_rules_need_a_secret_and_a_known_hash() -> None:
    with pytest.raises(ValueError, match="secret"):
        protector("PatientID=hash", secret=b"")
    with pytest.raises(ValueError, match="md5"):
        protector("PatientID=hash", algorithm="md5")
    assert protector("OtherPatientIDs=remove", secret=b"").active  # no secret needed without hashing


# -- applying -------------------------------------------------------------------------------------------------


def test_no_rules_returns_the_same_object() -> None:
    data = read(MR)
    assert Protector([], b"").apply(data) is data
    keep_only = protector("PatientID=keep")
    assert not keep_only.active
    assert keep_only.apply(data) is data


def test_rules_change_only_the_listed_attributes() -> None:
    data = with_other_ids(MR)
    before = parse(data)
    after = parse(protector(*RULES).apply(data))
    assert PSEUDONYM.match(after.PatientID)
    assert after.PatientID != before.PatientID
    assert re.match(r"^ANON\^[A-Z2-7]{16}$", str(after.PatientName))
    assert "OtherPatientIDs" not in after
    assert after.InstitutionName == "某医院"
    assert after.SpecificCharacterSet == "ISO_IR 192"  # was ISO_IR 100, which cannot hold 某医院
    assert before.PatientBirthDate and after.PatientBirthDate == ""
    assert after.StudyDescription == before.StudyDescription
    assert after.PatientIdentityRemoved == "YES"
    assert after.DeidentificationMethod == DEIDENTIFICATION_METHOD
    unchanged_keywords(before, after, {"PatientID", "PatientName", "OtherPatientIDs", "InstitutionName",
                                       "PatientBirthDate", "SpecificCharacterSet", *IDENTITY_MARKS})
    assert after.PixelData == before.PixelData
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID


def test_multi_valued_ids_are_hashed_one_by_one_and_link_to_the_patient_id() -> None:
    after = parse(protector("PatientID=hash", "OtherPatientIDs=hash").apply(with_other_ids(MR)))
    linked, second = after.OtherPatientIDs
    assert linked == after.PatientID
    assert PSEUDONYM.match(second)


def test_pseudonyms_are_deterministic_and_keyed() -> None:
    data = read(MR)
    first = protector("PatientID=hash", "PatientName=hash").apply(data)
    assert protector("PatientID=hash", "PatientName=hash").apply(data) == first
    other_key = parse(protector("PatientID=hash", secret=b"another secret of 32 bytes......").apply(data))
    assert other_key.PatientID != parse(first).PatientID


def test_sm3_pseudonym_is_hmac_sm3() -> None:
    data = read(MR)
    original = parse(data).PatientID
    sm3 = parse(protector("PatientID=hash", algorithm="sm3").apply(data)).PatientID
    sha = parse(protector("PatientID=hash").apply(data)).PatientID
    expected = base64.b32encode(hmac.new(SECRET, original.encode(), "sm3").digest()[:10]).decode()
    assert sm3 == expected != sha


def test_only_non_patient_changes_do_not_claim_identity_removed() -> None:
    after = parse(protector("InstitutionName=replace:Hospital").apply(read(MR)))
    assert after.InstitutionName == "Hospital"
    assert "PatientIdentityRemoved" not in after


def test_existing_deidentification_method_is_kept() -> None:
    before = parse(read(TCIA_CT))
    after = parse(protector("PatientID=hash").apply(read(TCIA_CT)))
    assert list(after.DeidentificationMethod) == [before.DeidentificationMethod, DEIDENTIFICATION_METHOD]


def test_rules_for_absent_attributes_leave_the_file_alone() -> None:
    data = read("charset/chrSQEncoding.dcm")  # no patient module at top level
    assert protector("PatientID=hash", "InstitutionName=replace:X").apply(data) is data


@pytest.mark.parametrize("rel", [
    "edge_cases/US-RGB-8-epicard_bigendian",  # colour, Explicit VR Big Endian
    "nema_wg04_compression/JLSL/CT1_JLSL",  # encapsulated JPEG-LS
    "multiframe_us_nm_xa/US-PAL-8-10x-echo",  # RLE multi-frame
    "seg_sr/report_dfl_enhanced_sr_deflate",  # Deflated Explicit VR LE, no pixels
    "edge_cases/MR_small_implicit.dcm",
])
def test_pixel_bytes_and_transfer_syntax_survive(rel: str) -> None:
    data = read(rel)
    before = parse(data)
    after = parse(protector(*RULES).apply(data))
    assert after.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
    assert after.get("PixelData") == before.get("PixelData")
    assert after.SOPInstanceUID == before.SOPInstanceUID
    assert str(after.PatientName).startswith("ANON^")


# -- character sets -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rel", "charset"), [("charset/chrX1.dcm", "ISO_IR 192"), ("charset/chrX2.dcm", "GB18030")])
def test_chinese_names_are_pseudonymised_and_charset_kept(rel: str, charset: str) -> None:
    data = read(rel)
    before = parse(data)
    assert "王" in str(before.PatientName)
    after = parse(protector("PatientName=hash", "ReferringPhysicianName=replace:李^医生").apply(data))
    assert after.SpecificCharacterSet == charset  # both can hold any text: nothing to re-declare
    assert re.match(r"^ANON\^[A-Z2-7]{16}$", str(after.PatientName))
    assert str(after.ReferringPhysicianName) == "李^医生"
    unchanged_keywords(before, after, {"PatientName", "ReferringPhysicianName", *IDENTITY_MARKS})


def test_same_name_in_utf8_and_gb18030_gets_the_same_pseudonym() -> None:
    p = protector("PatientName=hash")
    assert p.pseudonym("王^小东") == p.pseudonym("王^小东".encode("gb18030").decode("gb18030"))


@pytest.mark.parametrize("rel", ["charset/chrFren.dcm", "charset/chrH31.dcm", "charset/chrKoreanMulti.dcm",
                                 "charset/chrRuss.dcm"])
def test_chinese_replacement_in_other_charsets_re_declares_utf8_without_losing_text(rel: str) -> None:
    data = read(rel)
    before = parse(data)
    after = parse(protector("Manufacturer=replace:某厂", "ReferringPhysicianName=replace:李^医生").apply(data))
    assert after.SpecificCharacterSet == "ISO_IR 192"
    assert (after.Manufacturer, str(after.ReferringPhysicianName)) == ("某厂", "李^医生")
    assert str(after.PatientName) == str(before.PatientName)  # Latin-1 / ISO 2022 / Cyrillic text survives
    unchanged_keywords(before, after, {"Manufacturer", "ReferringPhysicianName", "SpecificCharacterSet"})


def test_not_dicom_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not a DICOM Part 10 file"):
        protector("PatientID=hash").apply(b"garbage" * 100)


def test_patient_identifiers_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    data = read(MR)
    ds = parse(data)
    with caplog.at_level(logging.DEBUG):
        protector(*RULES).apply(data)
    assert str(ds.PatientID) not in caplog.text
    assert str(ds.PatientName) not in caplog.text


def test_identity_removed_is_claimed_only_when_name_and_id_are_both_protected() -> None:
    only_id = parse(protector("PatientID=hash").apply(read(MR)))
    assert "PatientIdentityRemoved" not in only_id  # the name is still there: not de-identified
    assert "yunying" in str(only_id.DeidentificationMethod).lower()  # but the change is declared
    both = parse(protector("PatientID=hash", "PatientName=remove").apply(read(MR)))
    assert both.PatientIdentityRemoved == "YES"
