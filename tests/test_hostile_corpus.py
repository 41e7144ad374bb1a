"""The corpus of hostile files (issue 13): each file under tests/fixtures/hostile/, cut from real records, and
the one outcome a reviewer would want from importing it.

- ``imported``: every record, correctly, and no warning;
- ``warned``: every record, with a warning that says what was changed or dropped and why;
- ``refused``: an error naming the file and where, and the project unchanged (no source, no record).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

from screening.errors import ScreeningError
from screening.ingest import import_file
from screening.store import init_project

HOSTILE = Path(__file__).parent / "fixtures" / "hostile"


class Case(NamedTuple):
    file: str
    outcome: str  # imported | warned | refused
    says: str = ""  # a fragment of the warning or the error
    records: int = 0  # records imported (imported and warned)


CASES = [
    Case("sici_dois.ris", "imported", records=2),
    Case("roundtrip_pubmed.xml", "imported", records=10),
    Case("roundtrip_hostile.nbib", "imported", records=3),
    Case("pubmed_retracted.xml", "imported", records=1),
    Case("formula_titles.csv", "imported", records=5),
    Case("utf16le_no_bom.csv", "imported", records=4),
    Case("medline_no_final_newline.nbib", "imported", records=1),
    Case("tabular_trailing_commas.csv", "imported", records=4),
    Case("tabular_cached_formula.xlsx", "imported", records=4),
    Case("latin1_stray_byte.csv", "warned", "line 4: 1 line is not valid UTF-8 and read as Windows-1252", 4),
    Case("nul_in_title.csv", "warned", "line 3: field 'title': 1 NUL character(s) removed", 4),
    Case("ris_lowercase_tags.ris", "warned", "line 24: field 'py': lowercase RIS tags read as tags (py, ab)", 2),
    Case("ris_lowercase_whole_record.ris", "warned", "line 1: field 'ty': lowercase RIS tags read as tags", 1),
    Case("empty.ris", "refused", "no records in this ris file"),
    Case("header_only.csv", "refused", "no records in this csv file"),
    Case("medline_cut_mid_record.nbib", "refused", "record 2, line 67: field 'SO': the file ends at line 85"),
    Case("medline_cut_mid_line.nbib", "refused", "record 1, line 2: field 'SO': the file ends at line 18"),
    Case("medline_cut_in_tag.nbib", "refused", "line 35: the file ends mid-line, inside record 1"),
    Case("medline_lowercase_tag.nbib", "refused", "line 15: field 'ab': lowercase tag"),
    Case("medline_misaligned_tag.nbib", "refused", "line 13: field 'TI': malformed tag line"),
    Case("ris_lowercase_bad_spacing.ris", "refused", "line 9: field 'py': malformed tag line"),
    Case("ris_lowercase_unknown_tag.ris", "refused", "line 9: field 'zz': unknown RIS tag"),
    Case(
        "tabular_duplicate_columns.csv",
        "refused",
        "line 1: field 'abstract': two columns are 'abstract' (columns 3 and 7)",
    ),
    Case("tabular_short_row.csv", "refused", "line 4: field 'label_included': 3 fields where the header has 6"),
    Case("tabular_long_row.csv", "refused", "line 3: 7 fields where the header has 6, the extra ones not empty"),
    Case("tabular_uncached_formula.xlsx", "refused", "row 3: field 'Title': a formula (=CONCAT("),
]


def test_every_hostile_file_has_a_case() -> None:
    assert sorted(p.name for p in HOSTILE.iterdir()) == sorted(c.file for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_a_hostile_file_is_imported_warned_or_refused_and_nothing_is_lost(case: Case, tmp_path: Path) -> None:
    path = HOSTILE / case.file
    with init_project(tmp_path / "p.db", name="hostile") as store:
        if case.outcome == "refused":
            with pytest.raises(ScreeningError) as error:
                import_file(store, path, source_name="Hostile")
            assert str(error.value).startswith(str(path)) and case.says in str(error.value)
            assert "\n" not in str(error.value)  # one line
            assert (store.counts().sources, store.counts().records) == (0, 0)
            return
        result = import_file(store, path, source_name="Hostile")
        assert result.count == store.counts().records == case.records
        notices = [str(n) for n in result.notices]
        if case.outcome == "imported":
            assert notices == []
        else:
            assert any(case.says in n and n.startswith(str(path)) for n in notices), notices
