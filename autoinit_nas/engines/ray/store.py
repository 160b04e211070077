"""Where a Ray trial's record lives: the trial's directory on the experiment's storage.

Written atomically on local or shared filesystems, uploaded from the trial's
working directory for any other storage filesystem (S3, GCS, ...).
"""

import json

from autoinit_nas.trials import records


class RecordWriter:
    """Writes a trial's record into its directory on the experiment's storage.

    A storage path on a local or shared (NFS) filesystem is written directly
    and atomically; for any other storage filesystem (S3, GCS, ...) the record
    is written in the trial's local working directory and uploaded from there.
    If the storage cannot be found (Ray's internal ``StorageContext`` moved),
    ``tune.get_context().get_trial_dir()`` is used: on the driver's node that
    is Tune's staging copy, synced to storage with the trial's other files.
    """

    def __init__(self, context):
        self.local_dir = None
        self.remote = None
        storage = _storage()
        if storage is not None:
            import pyarrow.fs

            if isinstance(storage.storage_filesystem, pyarrow.fs.LocalFileSystem):
                self.local_dir = storage.trial_fs_path
            else:
                self.local_dir = storage.trial_working_directory
                self.remote = (storage.storage_filesystem, storage.trial_fs_path)
        if self.local_dir is None:
            self.local_dir = call(context.get_trial_dir)

    def read(self):
        """The record already in the trial's directory (from an earlier run of the trial), or None."""
        try:
            if self.remote is not None:
                filesystem, directory = self.remote
                with filesystem.open_input_stream(f"{directory}/{records.RECORD_FILENAME}") as source:
                    record = json.loads(source.read())
                return record if isinstance(record, dict) and record.get("format") == records.FORMAT else None
            return records.read_record(self.local_dir) if self.local_dir else None
        except (OSError, ValueError):  # absent, unreadable or not a record: start afresh
            return None

    def write(self, record):
        if not self.local_dir:
            return None
        path = records.write_record(self.local_dir, record)
        if self.remote is not None:
            filesystem, directory = self.remote
            filesystem.create_dir(directory, recursive=True)
            with open(path, "rb") as source, filesystem.open_output_stream(
                f"{directory}/{records.RECORD_FILENAME}"
            ) as target:
                target.write(source.read())
        return path


def _storage():
    """The trial's Ray storage context (``StorageContext``), or None."""
    try:
        from ray.train._internal import session

        current = session.get_session()
        return None if current is None else current.storage
    except Exception:  # noqa: BLE001 - internal API: fall back to get_trial_dir()
        return None


def call(function):
    try:
        return function()
    except Exception:  # noqa: BLE001 - outside a Tune session
        return None
