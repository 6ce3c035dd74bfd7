"""Recordings of trades on disk: the Parquet dataset's layout, and checking one for holes."""
