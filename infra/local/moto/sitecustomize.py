"""Loaded by the local stack's moto server (stack.sh puts this folder on PYTHONPATH) before moto itself.

moto's Kinesis numbers a shard's next record "the highest sequence number so far, plus one" without a
lock (its own comment says the method "is not safe for concurrency"): two PutRecords on one shard at
the same moment get the same number and the second overwrites the first. Kinesis never loses a record
it confirmed; the stand-in must not either, since the sink keeps several PutRecords calls in flight.
"""

import threading

from moto.kinesis import models

_lock = threading.Lock()
_put_record = models.Shard.put_record


def _locked_put_record(self, *args, **kwargs):
    with _lock:
        return _put_record(self, *args, **kwargs)


models.Shard.put_record = _locked_put_record
