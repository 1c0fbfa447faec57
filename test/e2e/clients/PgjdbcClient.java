// pgjdbc (Debian's libpostgresql-jdbc-java) through a phigate port: what a Java service does.
// Run as a single-file program: java -cp /usr/share/java/postgresql.jar PgjdbcClient.java PORT [masked]
// Prints one JSON object of results; the vitest suite (pgjdbc.test.ts) checks them. With `masked`,
// reads the jdbc_mask table with server-prepared statements from the first run (binary transfer)
// and prints each row of three runs as one string.
import java.sql.*;
import java.util.*;

public class PgjdbcClient {
  public static void main(String[] args) throws Exception {
    if (args.length > 1 && args[1].equals("masked")) {
      masked(args[0]);
      return;
    }
    String url = "jdbc:postgresql://127.0.0.1:" + args[0] + "/ehr?user=alice&ApplicationName=pgjdbc-test";
    Map<String, String> out = new LinkedHashMap<>();
    try (Connection c = DriverManager.getConnection(url)) {
      try (Statement s = c.createStatement()) {
        s.execute("DROP TABLE IF EXISTS jdbc_t");
        s.execute("CREATE TABLE jdbc_t (id int PRIMARY KEY, name text, amount numeric, at timestamptz DEFAULT now())");
      }
      // batch: Parse/Bind/Execute pipelined, one Sync
      try (PreparedStatement p = c.prepareStatement("INSERT INTO jdbc_t (id, name, amount) VALUES (?, ?, ?)")) {
        for (int i = 1; i <= 300; i++) {
          p.setInt(1, i);
          p.setString(2, "name-" + i);
          p.setBigDecimal(3, new java.math.BigDecimal(i).movePointLeft(1));
          p.addBatch();
        }
        int[] counts = p.executeBatch();
        out.put("batch", String.valueOf(Arrays.stream(counts).sum()));
      }
      // a prepared statement run past the prepare threshold (named statement, binary transfer)
      StringBuilder names = new StringBuilder();
      try (PreparedStatement p = c.prepareStatement("SELECT name, amount, at FROM jdbc_t WHERE id = ?")) {
        for (int i = 1; i <= 10; i++) {
          p.setInt(1, i);
          try (ResultSet r = p.executeQuery()) {
            r.next();
            names.append(r.getString(1)).append(i < 10 ? "," : "");
          }
        }
      }
      out.put("names", names.toString());
      // cursor fetch: Execute with a row limit, PortalSuspended between fetches
      c.setAutoCommit(false);
      int fetched = 0;
      try (Statement s = c.createStatement()) {
        s.setFetchSize(50);
        try (ResultSet r = s.executeQuery("SELECT id FROM jdbc_t ORDER BY id")) {
          while (r.next()) fetched++;
        }
      }
      int big = 0;
      try (Statement s = c.createStatement()) {
        s.setFetchSize(100);
        try (ResultSet r = s.executeQuery("SELECT g AS big_fetch FROM generate_series(1, 1500) g")) {
          while (r.next()) big++;
        }
      }
      c.commit();
      out.put("fetched", String.valueOf(fetched));
      out.put("big_fetch", String.valueOf(big));
      // error inside a transaction, savepoint, rollback
      Savepoint sp = c.setSavepoint();
      try (Statement s = c.createStatement()) {
        s.execute("SELECT 1 / 0");
      } catch (SQLException e) {
        out.put("error", e.getSQLState());
        c.rollback(sp);
      }
      try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT count(*) FROM jdbc_t")) {
        r.next();
        out.put("after_error", String.valueOf(r.getInt(1)));
      }
      c.commit();
      c.setAutoCommit(true);
      // catalog queries, as tools and ORMs make them
      int tables = 0;
      try (ResultSet r = c.getMetaData().getTables(null, "public", "jdbc_t", new String[] {"TABLE"})) {
        while (r.next()) tables++;
      }
      out.put("metadata_tables", String.valueOf(tables));
      // cancel from another thread
      try (Statement s = c.createStatement()) {
        Thread t = new Thread(() -> {
          try {
            Thread.sleep(500);
            s.cancel();
          } catch (Exception ignored) {
          }
        });
        t.start();
        try {
          s.execute("SELECT pg_sleep(10)");
        } catch (SQLException e) {
          out.put("cancelled", e.getSQLState());
        }
        t.join();
      }
    }
    print(out);
  }

  static void masked(String port) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + port + "/ehr?user=alice&prepareThreshold=1";
    Map<String, String> out = new LinkedHashMap<>();
    try (Connection c = DriverManager.getConnection(url);
        PreparedStatement p = c.prepareStatement("SELECT * FROM jdbc_mask WHERE id <= ? ORDER BY id")) {
      for (int run = 1; run <= 3; run++) {
        p.setInt(1, 3);
        try (ResultSet r = p.executeQuery()) {
          int n = r.getMetaData().getColumnCount();
          while (r.next()) {
            StringBuilder row = new StringBuilder();
            for (int i = 1; i <= n; i++) row.append(i > 1 ? "|" : "").append(r.getString(i));
            out.put("run" + run + "-" + r.getInt(1), row.toString());
          }
        }
      }
    }
    print(out);
  }

  static void print(Map<String, String> out) {
    StringBuilder json = new StringBuilder("{");
    for (Map.Entry<String, String> e : out.entrySet()) {
      if (json.length() > 1) json.append(',');
      json.append('"').append(e.getKey()).append("\":\"").append(e.getValue().replace("\"", "\\\"")).append('"');
    }
    System.out.println(json.append('}'));
  }
}
