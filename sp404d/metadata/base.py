"""The metadata of one file (:class:`Metadata`) and the names every metadata module shares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sp404d.values import FIELDS, PER_FILE_ONLY, SHAPING_KEYS

__all__ = ["FIELDS", "PER_FILE_ONLY", "SHAPING_KEYS", "Metadata"]

FOLDER_FILE = "sp404.yaml"
MAX_SIDECAR_BYTES = 64 * 1024

METADATA_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")
# Sidecar names, most specific first; {name} is "kick.wav", {stem} is "kick".
SIDECAR_FORMS: tuple[str, ...] = ("{name}.yaml", "{name}.yml", "{stem}.yaml", "{stem}.yml")

# --------------------------------------------------------------------------------------------
# The result


@dataclass(frozen=True)
class Metadata:
    """What sp404d knows about one file, and where each value came from.

    ``origins`` maps a field to ``"sidecar:<file name>"``, ``"folder:<folder file relative to
    the inbox>"``, what the file carries (``"tag:TBPM"``, ``"acid"``, ``"apple loop"``),
    ``"path"``, ``"default"``, or ``"analysis"``. It has an entry for every field some source
    decided, including one a sidecar or folder file set to empty (``key:``), so the journal can
    say why a value is missing. ``title`` always has a value and an origin.
    """

    title: str
    genre: str | None = None
    bpm: float | None = None
    key: str | None = None
    tags: tuple[str, ...] = ()
    kit: str | None = None
    bank: str | None = None
    pad: int | None = None
    origins: Mapping[str, str] = field(default_factory=dict, hash=False)
    # A BPM guessed from the length alone (see ``metadata_path.bpm_from_length``), kept apart
    # from ``bpm`` so that it decides nothing unless ``bpm_from_length: true`` makes it the BPM.
    bpm_guess: float | None = None
    # What the file says of itself beyond BPM and key (``loop``, ``beats``, ``root``), and the
    # values it carries that were no BPM or key, each with why (:mod:`metadata.carried`).
    facts: Mapping[str, Any] = field(default_factory=dict, hash=False)
    ignored: tuple[str, ...] = ()
    # Sound shaping asked for by a sidecar or folder file (``SHAPING_KEYS``), over the inbox's
    # settings; ``False`` for ``off``.
    shaping: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # A private copy: a caller's dict must not change our origins behind our back. A plain
        # dict (not a MappingProxyType) because plans cross to worker processes by pickle.
        object.__setattr__(self, "origins", dict(self.origins))
        object.__setattr__(self, "shaping", dict(self.shaping))
        object.__setattr__(self, "facts", dict(self.facts))

    def unheard(self) -> tuple[bool, bool]:
        """Whether its BPM, and its key, are left to listen for: nothing gave one and no one
        cleared it on purpose (``key:``); no tempo for a one-shot by its acid or Apple Loops
        chunk. The job, ``check`` and the planner ask the same."""
        bpm = self.bpm is None and "bpm" not in self.origins and self.facts.get("loop") is not False
        return bpm, self.key is None and "key" not in self.origins

    def as_dict(self) -> dict[str, Any]:
        """The fields plus ``"origins"``, as plain JSON-friendly values (for the journal)."""
        return {
            "title": self.title,
            "genre": self.genre,
            "bpm": self.bpm,
            "key": self.key,
            "tags": list(self.tags),
            "kit": self.kit,
            "bank": self.bank,
            "pad": self.pad,
            "origins": dict(self.origins),
            # Only when there is one: the metadata of every other file reads as it always did.
            **({"bpm_guess": self.bpm_guess} if self.bpm_guess is not None else {}),
            **({"shaping": dict(self.shaping)} if self.shaping else {}),
            **({"facts": dict(self.facts)} if self.facts else {}),
            **({"ignored": list(self.ignored)} if self.ignored else {}),
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any] | None, fallback_title: str) -> Metadata:
        """The metadata a record's ``metadata`` (:meth:`as_dict`) stands for: the same
        values, so a job made again from its record writes the same names and notes."""
        data = data or {}

        def number(name: str) -> Any:
            value = data.get(name)
            return value if isinstance(value, int | float) and not isinstance(value, bool) else None

        shaping = {
            k: tuple(v) if isinstance(v, list) else v
            for k, v in dict(data.get("shaping") or {}).items()
        }
        pad = data.get("pad")
        return cls(
            title=str(data.get("title") or fallback_title),
            genre=data.get("genre"),
            bpm=number("bpm"),
            key=data.get("key"),
            tags=tuple(data.get("tags") or ()),
            kit=data.get("kit"),
            bank=data.get("bank"),
            pad=pad if isinstance(pad, int) and not isinstance(pad, bool) else None,
            origins=dict(data.get("origins") or {}),
            bpm_guess=number("bpm_guess"),
            shaping=shaping,
            facts=dict(data.get("facts") or {}),
            ignored=tuple(str(i) for i in data.get("ignored") or ()),
        )
