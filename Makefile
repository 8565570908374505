# The two commands of the README. Everything else is in scripts/.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test setup clean

VIEWER := viewer/dist/index.html
VIEWER_SOURCES := $(shell find viewer/src -type f 2>/dev/null) viewer/index.html viewer/mobile.html viewer/mobile-viewer.html viewer/package-lock.json viewer/vite.config.ts

$(STAMP): pyproject.toml
	bash scripts/setup.sh

$(VIEWER): $(VIEWER_SOURCES)
	bash scripts/build-viewer.sh

setup: $(STAMP) $(VIEWER)

## make run — set up, load the demo data and start the archive (web + DICOMweb + DICOM)
run: $(STAMP) $(VIEWER)
	$(VENV)/bin/yunying serve --demo --data-dir ./data

## make test — set up (incl. dcmtk, PostgreSQL) and run ruff, mypy, import contracts and pytest
test: $(STAMP) $(VIEWER)
	bash scripts/test.sh

clean:
	rm -rf $(VENV) data .mypy_cache .ruff_cache viewer/dist viewer/node_modules
