"""The project's own error types.

Every problem a user can cause (bad audio, bad manifest line, bad config) is raised as one
of these, with a one-line message that names the file (and line) and what is wrong. The CLI
prints ``str(error)`` and exits non-zero instead of showing a traceback.
"""


class SpeechRnnError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(SpeechRnnError):
    """A configuration key or value is invalid."""


class AudioError(SpeechRnnError):
    """An audio file cannot be used: missing, unreadable, empty, non-finite."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ManifestError(SpeechRnnError):
    """A manifest (or one of its lines) cannot be used."""

    def __init__(self, path, problem, line=None):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class TranscriptError(SpeechRnnError):
    """A transcript cannot be used with the vocabulary or the audio it belongs to."""


class RunFolderError(SpeechRnnError):
    """A run folder is missing files, or its files do not load safely."""


class OutputError(SpeechRnnError):
    """An output file or folder cannot be created or written."""
