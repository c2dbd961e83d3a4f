import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.rocksdb.Options;
import org.rocksdb.RocksDB;
import org.rocksdb.RocksIterator;
import org.rocksdb.TransactionDB;
import org.rocksdb.TransactionDBOptions;
import org.rocksdb.WriteOptions;

/**
 * Deletes the ephemeral nodes from a stopped standalone broker's RocksDB metadata store.
 *
 * <p>Why: after a broker is killed, its ephemeral nodes (bookie registration, broker and bundle ownership
 * locks) stay in the store. The restarted broker drops them lazily while it registers anew, and the late
 * "deleted" notifications can make the fresh bookie registration lock flap for a minute ("Lock on resource
 * /ledgers/available/... was invalidated"), so writes fail with "Not enough non-faulty bookies". In a real
 * cluster those nodes would expire with the dead process's session; this does that expiry before restart.
 *
 * <p>Value layout (pulsar-metadata RocksdbMetadataStore.MetaValue, format 1): int header size, int format
 * version, long version, long owner, long created, long modified, byte ephemeral, then the data. Keys that
 * do not parse as such (the store's own counters) are left alone.
 *
 * <p>Usage: java -cp "$PULSAR_HOME/lib/*:classes" DropEphemeralNodes METADATA_DIR. Compiled by
 * infra/local/pulsar.sh against the distribution's rocksdbjni.
 */
public final class DropEphemeralNodes {
  private static final int EPHEMERAL_OFFSET = 4 + 4 + 8 + 8 + 8 + 8;

  private DropEphemeralNodes() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: DropEphemeralNodes METADATA_DIR");
      System.exit(2);
    }
    RocksDB.loadLibrary();
    try (Options options = new Options().setCreateIfMissing(false);
        TransactionDBOptions txOptions = new TransactionDBOptions();
        TransactionDB db = TransactionDB.open(options, txOptions, args[0]);
        WriteOptions sync = new WriteOptions().setSync(true)) {
      List<byte[]> ephemeral = new ArrayList<>();
      try (RocksIterator it = db.newIterator()) {
        for (it.seekToFirst(); it.isValid(); it.next()) {
          if (isEphemeral(it.value())) {
            ephemeral.add(it.key());
          }
        }
      }
      for (byte[] key : ephemeral) {
        db.delete(sync, key);
      }
      System.out.println("dropped " + ephemeral.size() + " ephemeral metadata nodes");
    }
  }

  private static boolean isEphemeral(byte[] value) {
    if (value == null || value.length <= EPHEMERAL_OFFSET) {
      return false;
    }
    ByteBuffer buffer = ByteBuffer.wrap(value);
    int headerSize = buffer.getInt(0);
    int formatVersion = buffer.getInt(4);
    return formatVersion == 1 && headerSize > EPHEMERAL_OFFSET && headerSize <= value.length
        && value[EPHEMERAL_OFFSET] == 1;
  }
}
