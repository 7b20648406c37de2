"""Where a genotype a user names comes from: a zoo name, a search.json or comparison.json, a genotype
JSON file, or the genotype itself, as JSON / DARTS text or (from a YAML config or a `key={...}`
override) as its mapping.

    genotype, convention = resolve_genotype("darts_v2")             # ("darts" for the DARTS family)
    genotype, convention = resolve_genotype("runs/search/search.json")
    genotype, convention = resolve_genotype({"normal": [...], "normal_concat": [...], ...})
"""
from __future__ import annotations

import json
from pathlib import Path

from . import zoo
from .errors import MissingFileError
from .genotype import Genotype, GenotypeError


def _from_record(data, source: str) -> Genotype:
    """A genotype from a parsed search.json or comparison.json (its `best`), retrain.json (its
    `genotype`) or genotype JSON."""
    if isinstance(data, dict) and "best" in data:
        data = data["best"]
    if isinstance(data, dict) and "genotype" in data:
        data = data["genotype"]
    if isinstance(data, str):
        return Genotype.parse(data)
    try:
        return Genotype.from_dict(data)
    except GenotypeError as e:
        raise GenotypeError(f"{source} holds no genotype: {e}") from None


def resolve_genotype(spec: str | dict) -> tuple[Genotype, str]:
    """(genotype, its natural convention): the NASNet family of the zoo is built in the NASNet
    convention, everything else (DARTS family, searched cells) in the DARTS convention."""
    if isinstance(spec, dict):
        try:
            return Genotype.from_dict(spec), "darts"
        except GenotypeError as e:
            raise GenotypeError(f"the genotype given inline is malformed: {e}") from None
    if spec in zoo.names():
        return zoo.get(spec), zoo.space_of(spec)
    text = spec.strip()
    if text.startswith(("{", "Genotype(")):
        return Genotype.parse(text), "darts"
    path = Path(spec)
    if not path.is_file():
        raise MissingFileError(f"genotype {spec!r} is neither a zoo cell ({', '.join(zoo.names())}) "
                                "nor an existing search.json / genotype JSON file")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        try:
            return Genotype.parse(path.read_text()), "darts"
        except GenotypeError as e:
            raise GenotypeError(f"{path} holds no genotype: {e}") from None
    return _from_record(data, str(path)), "darts"
