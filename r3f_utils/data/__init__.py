"""Dataset loaders: every dataset of the paper from the Hugging Face Hub or from local files, one code path."""

from r3f_utils.data.sources import PARQUET_CONVERSION, DatasetUnavailableError, load_split

__all__ = ["PARQUET_CONVERSION", "DatasetUnavailableError", "load_split"]
