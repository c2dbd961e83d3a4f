"""Cross-implementation check of internal/kpl against aws_kinesis_agg, the official Python KPL
aggregation library (run by interop_integration_test.go with the project venv's python).

Reads one JSON request on stdin:
  {"aggregate":   [[{"pk": str, "ehk": str or null, "data": base64}, ...], ...],
   "deaggregate": [base64 blob, ...]}
and writes one JSON answer on stdout:
  {"version": str,
   "aggregates":   [base64 blob, ...],             one per record list, made by RecordAggregator
   "deaggregated": [[{"aggregated": bool, "pk": str, "ehk": str or null, "data": base64,
                      "sub": int or null}, ...], ...],       deaggregate_records' output per blob
   "has_ehk_index": [[bool, ...] or null, ...]}     per blob: which records set explicit_hash_key_index
"""
import base64
import json
import sys
from importlib import metadata

# The deaggregator module puts the package directory on sys.path, which messages_pb2 needs for its
# own imports, so it is imported first.
import aws_kinesis_agg.deaggregator as deaggregator
import aws_kinesis_agg.aggregator as aggregator
from aws_kinesis_agg import messages_pb2

MAGIC = b"\xf3\x89\x9a\xc2"
DIGEST_SIZE = 16


def aggregate(records):
    agg = aggregator.RecordAggregator()
    for r in records:
        full = agg.add_user_record(r["pk"], base64.b64decode(r["data"]), r["ehk"] or None)
        if full is not None:
            raise SystemExit("records do not fit in one aggregate")
    _, _, blob = agg.clear_and_get().get_contents()
    return base64.b64encode(blob).decode()


def b64(value):
    # deaggregate_records re-encodes user records' data (bytes) and passes the original string on
    # for a record it does not de-aggregate; normalise both to a base64 str.
    if isinstance(value, str):
        value = value.encode()
    return base64.b64encode(base64.b64decode(value)).decode()


def deaggregate(blob):
    lambda_record = {
        "eventSource": "aws:kinesis",
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "outer",
            "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
            "approximateArrivalTimestamp": 1545084650.987,
            "data": blob,
        },
    }
    out = []
    for r in deaggregator.deaggregate_records([lambda_record]):
        k = r["kinesis"]
        out.append({
            "aggregated": bool(k.get("aggregated", False)),
            "pk": k["partitionKey"],
            "ehk": k.get("explicitHashKey"),
            "data": b64(k["data"]),
            "sub": k.get("subSequenceNumber"),
        })
    return out


def ehk_index_presence(blob):
    # The library reports ehk_table[0] for a record without an explicit hash key index whenever the
    # table is not empty, so the test asks the protobuf message itself which records set the index.
    raw = base64.b64decode(blob)
    if not raw.startswith(MAGIC) or len(raw) <= len(MAGIC) + DIGEST_SIZE:
        return None
    ar = messages_pb2.AggregatedRecord()
    try:
        ar.ParseFromString(raw[len(MAGIC):-DIGEST_SIZE])
    except Exception:  # any parse failure: not an aggregate for the library either
        return None
    return [r.HasField("explicit_hash_key_index") for r in ar.records]


def main():
    request = json.load(sys.stdin)
    blobs = request.get("deaggregate") or []
    answer = {
        "version": metadata.version("aws_kinesis_agg"),
        "aggregates": [aggregate(records) for records in request.get("aggregate") or []],
        "deaggregated": [deaggregate(blob) for blob in blobs],
        "has_ehk_index": [ehk_index_presence(blob) for blob in blobs],
    }
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
