"""The one exception tree of ivr112.

    Ivr112Error
     ├── ConfigError          settings file or environment variable is wrong
     ├── PlanError            a dialplan YAML is refused (carries every problem found)
     ├── SimulationError      a simulated call could not be walked (ivr.simulate)
     ├── GraphError           a plan could not be drawn (ivr.graph)
     ├── PromptError          a prompt file is missing or has the wrong format
     ├── AsteriskError        provisioning or running the local Asterisk failed
     └── AriError             a request to Asterisk's REST Interface failed (ari_app.ari.errors)

Errors are for people: each message says what was expected, what was found, where,
and what to do about it.
"""

from collections.abc import Sequence


class Ivr112Error(Exception):
    """Base of every error ivr112 raises on purpose."""


class ConfigError(Ivr112Error):
    """A setting is missing or has a value that cannot be used."""


class PlanError(Ivr112Error):
    """A plan was refused; `problems` lists every problem found, in file order."""

    def __init__(self, problems: "Sequence[object]") -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class PromptError(Ivr112Error):
    """A prompt the plan needs is missing or cannot be played by Asterisk."""


class AsteriskError(Ivr112Error):
    """The local Asterisk could not be provisioned, started, or reached."""
