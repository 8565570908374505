# The two commands of the README. Everything else is in scripts/.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test setup clean

$(STAMP): pyproject.toml
	bash scripts/setup.sh

setup: $(STAMP)

## make run — set up, load the demo data and start the archive (web + DICOMweb + DICOM)
run: $(STAMP)
	$(VENV)/bin/yunying serve --demo --data-dir ./data

## make test — set up (incl. dcmtk, PostgreSQL) and run ruff, mypy, import contracts and pytest
test: $(STAMP)
	bash scripts/test.sh

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache
