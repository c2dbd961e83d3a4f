import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.monitoring.Telemetry;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

/**
 * Starts DynamoDB Local listening on one address only.
 *
 * <p>DynamoDB Local has no option for the bind address and listens on every interface; the local stack must
 * listen on 127.0.0.1 only. This builds the server exactly as DynamoDB Local's own main does (same command
 * line), sets the host of its Jetty connector before start, and starts it. Telemetry is configured off here
 * because we bypass the main that would do it; pass -disableTelemetry as well.
 *
 * <p>Compiled by infra/local/stack.sh install against the jars Maven resolved; the bind address comes from
 * the system property {@code kp.bind} (default 127.0.0.1).
 */
public final class LoopbackServer {
  private LoopbackServer() {}

  public static void main(String[] args) throws Exception {
    String host = System.getProperty("kp.bind", "127.0.0.1");
    Telemetry.configureTelemetry("kinesis-pulsar-local", "InMemory", false);
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);

    // The Jetty server is a private field; there is no accessor.
    Field field = DynamoDBProxyServer.class.getDeclaredField("server");
    field.setAccessible(true);
    Server jetty = (Server) field.get(proxy);
    Connector[] connectors = jetty.getConnectors();
    if (connectors.length == 0) {
      throw new IllegalStateException("DynamoDB Local built a Jetty server without connectors");
    }
    for (Connector connector : connectors) {
      if (!(connector instanceof ServerConnector)) {
        throw new IllegalStateException("unexpected Jetty connector " + connector.getClass().getName());
      }
      ((ServerConnector) connector).setHost(host);
    }
    proxy.start();
  }
}
