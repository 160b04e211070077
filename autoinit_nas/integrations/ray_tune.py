"""The Ray Tune names users import (``with_autoinit``, ``prepare_model``, ...); they live in ``autoinit_nas.engines.ray``."""

from autoinit_nas.engines.ray.callback import RayReportCallback  # noqa: F401
from autoinit_nas.engines.ray.session import progress_callback, tune_session  # noqa: F401
from autoinit_nas.engines.ray.space import build_from_config, paired_search, param_space_from_space  # noqa: F401
from autoinit_nas.engines.ray.threads import set_tensorflow_threads  # noqa: F401
from autoinit_nas.engines.ray.schedulers import make_scheduler  # noqa: F401
from autoinit_nas.engines.ray.trainable import MODES, current_record, initial_epoch, prepare_model, update_record, with_autoinit  # noqa: F401
from autoinit_nas.engines.ray.trial import ENGINE  # noqa: F401
from autoinit_nas.trials.arms import ARMS, trial_seed  # noqa: F401
