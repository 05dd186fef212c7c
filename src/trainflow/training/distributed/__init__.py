"""DDP plumbing for the Trainer, in three modules, re-exported here:

* :mod:`.group`: the process group torchrun's environment describes (:func:`setup`,
  :func:`teardown`, :func:`process_group`), ranks, and :func:`is_main_process`, the one
  process that writes files;
* :mod:`.collectives`: sums, stop votes, broadcasts and buffer syncs, each bounded by the
  group's timeout, and :func:`wrap_model` (DDP);
* :mod:`.sharding`: :func:`shard_loader`, each process's part of a loader.

Everything is a no-op in a single process, so a run with world size 1 pays nothing and computes
the same bits as without this package.
"""

from trainflow.training.distributed.collectives import (
    broadcast_object,
    count_true,
    first_object,
    reduce_sum,
    run_on_main,
    sync_buffers,
    wrap_model,
)
from trainflow.training.distributed.group import (
    DEFAULT_TIMEOUT_S,
    NODE_RANK_ENV,
    collective_device,
    env_world_size,
    get_local_rank,
    get_rank,
    get_world_size,
    is_distributed,
    is_main_process,
    local_device,
    main_rank,
    process_group,
    resolve_backend,
    restart_count,
    setup,
    teardown,
    under_torchrun,
)
from trainflow.training.distributed.sharding import (
    ShardedInMemoryLoader,
    ShardSampler,
    shard_dataloader,
    shard_indices,
    shard_loader,
)
from trainflow.training.supervisor import die_with_parent

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "NODE_RANK_ENV",
    "ShardSampler",
    "ShardedInMemoryLoader",
    "broadcast_object",
    "collective_device",
    "count_true",
    "die_with_parent",
    "env_world_size",
    "first_object",
    "get_local_rank",
    "get_rank",
    "get_world_size",
    "is_distributed",
    "is_main_process",
    "local_device",
    "main_rank",
    "process_group",
    "reduce_sum",
    "resolve_backend",
    "restart_count",
    "run_on_main",
    "setup",
    "shard_dataloader",
    "shard_indices",
    "shard_loader",
    "sync_buffers",
    "teardown",
    "under_torchrun",
    "wrap_model",
]
