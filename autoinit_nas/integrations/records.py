"""The trial record's names where earlier releases had them: schema and I/O in
``autoinit_nas.trials``, model description in ``autoinit_nas.core.architecture``.
"""

from autoinit_nas.core.architecture import (  # noqa: F401
    architecture_id,
    canonical_architecture,
    depth,
    describe_model,
    parameter_count,
)
from autoinit_nas.trials.arms import (  # noqa: F401
    PREDICTION_FIELDS,
    checked_options,
    initialize_arm,
    output_estimate,
    uninitialized_arm,
)
from autoinit_nas.trials.divergence import logs_divergence  # noqa: F401
from autoinit_nas.trials.metrics import best_epoch, epoch_metrics, finite, non_finite_loss  # noqa: F401
from autoinit_nas.trials.records import (  # noqa: F401
    FORMAT,
    RECORD_FILENAME,
    STATUSES,
    VERSION,
    json_safe,
    new_record,
    read_record,
    read_records,
    rows,
    write_record,
)
