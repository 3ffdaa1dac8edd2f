"""Dataset loaders: every dataset of the paper from the Hugging Face Hub or from local files, one code path."""

from r3f_utils.data.sources import DatasetUnavailableError, load_split

__all__ = ["DatasetUnavailableError", "load_split"]
