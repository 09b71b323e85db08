"""Whether a folder holds a SAM / CloudFormation template, without reading one.

Apart from sam.py so that a plain function folder, which has no template, is resolved without
importing the YAML parser and the template readers (tens of ms at every start of a command).
"""

from __future__ import annotations

from pathlib import Path

from workbench.core.config.function import ConfigError
from workbench.core.config.settings import display_path

TEMPLATE_NAMES = ("template.yaml", "template.yml")


def find_template(folder: Path) -> Path | None:
    """The folder's template.yaml / template.yml; both at once is ambiguous and an error."""
    found = [folder / n for n in TEMPLATE_NAMES if (folder / n).is_file()]
    if len(found) > 1:
        raise ConfigError(
            f"{display_path(folder)}: has both template.yaml and template.yml; give the one to use"
        )
    return found[0] if found else None
