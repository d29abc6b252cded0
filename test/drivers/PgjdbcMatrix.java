// pgjdbc through pgrelay (transaction pooling): run by test/drivers/pgjdbc.test.ts as a single-file
// Java program with the JDBC URLs of two relays (the second with max_prepared_statements = 3) and
// of PostgreSQL itself. Prints one JSON line per check. pgjdbc prepares on the server (S_1, S_2 ...)
// after prepareThreshold (5) executions of a PreparedStatement, sends batches as pipelines of
// Bind/Execute, and closes server statements with protocol Close.

import java.sql.*;
import java.util.*;
import java.util.concurrent.*;

public class PgjdbcMatrix {
  static void report(String check, boolean ok, Object detail) {
    String d = String.valueOf(detail).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", " ");
    System.out.println("{\"check\":\"" + check + "\",\"ok\":" + ok + ",\"detail\":\"" + d + "\"}");
    System.out.flush();
  }

  interface Check { void run() throws Exception; }

  static void run(String name, Check c) {
    try { c.run(); } catch (Throwable e) { report(name, false, e.toString()); }
  }

  public static void main(String[] args) throws Exception {
    String url = args[0], small = args[1], direct = args[2];
    Properties props = new Properties();
    props.setProperty("user", "postgres");

    run("default prepare path", () -> {
      ExecutorService pool = Executors.newFixedThreadPool(8);
      Set<Integer> pids = ConcurrentHashMap.newKeySet();
      List<String> errors = Collections.synchronizedList(new ArrayList<>());
      List<Future<?>> fs = new ArrayList<>();
      for (int w = 0; w < 8; w++) {
        final int i = w;
        fs.add(pool.submit(() -> {
          try (Connection c = DriverManager.getConnection(url, props);
               PreparedStatement ps = c.prepareStatement("select v, pg_backend_pid() from drv where id = ?")) {
            for (int n = 0; n < 40; n++) {
              int id = (i * 7 + n) % 100 + 1;
              ps.setInt(1, id);
              try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                if (!rs.getString(1).equals("v" + id)) errors.add("worker " + i + ": " + rs.getString(1));
                pids.add(rs.getInt(2));
              }
            }
            if (!ps.unwrap(org.postgresql.PGStatement.class).isUseServerPrepare()) errors.add("worker " + i + ": not server-prepared");
          } catch (Exception e) { errors.add(e.toString()); }
          return null;
        }));
      }
      for (Future<?> f : fs) f.get();
      pool.shutdown();
      report("default prepare path: right rows, server-prepared", errors.isEmpty(), errors);
      report("default prepare path: both servers used", pids.size() == 2, pids.size());
    });

    run("close and prepare again", () -> {
      Properties p = new Properties(props);
      p.setProperty("user", "postgres");
      p.setProperty("prepareThreshold", "1");
      p.setProperty("preparedStatementCacheQueries", "0");
      try (Connection c = DriverManager.getConnection(url, p)) {
        boolean ok = true;
        for (int round = 0; round < 30; round++) {
          // each statement is closed on the server when closed here; a new text comes next
          try (PreparedStatement ps = c.prepareStatement("select ?::int + " + (round % 3))) {
            for (int k = 0; k < 3; k++) {
              ps.setInt(1, k);
              try (ResultSet rs = ps.executeQuery()) { rs.next(); ok &= rs.getInt(1) == k + round % 3; }
            }
          }
        }
        report("Close, then new texts prepared: right results", ok, "");
      }
    });

    run("batch", () -> {
      try (Connection c = DriverManager.getConnection(url, props)) {
        c.setAutoCommit(false);
        try (PreparedStatement ps = c.prepareStatement("insert into drv_batch (id, v) values (?, ?)")) {
          for (int b = 0; b < 5; b++) {
            for (int i = 0; i < 40; i++) {
              ps.setInt(1, b * 40 + i);
              ps.setString(2, "b" + b);
              ps.addBatch();
            }
            int[] counts = ps.executeBatch();
            if (counts.length != 40) throw new RuntimeException("batch count " + counts.length);
          }
        }
        c.commit();
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("select count(*) from drv_batch")) {
          rs.next();
          report("batches of prepared inserts committed", rs.getInt(1) == 200, rs.getInt(1));
        }
        c.commit();
      }
    });

    run("failing parse", () -> {
      Properties p = new Properties(props);
      p.setProperty("user", "postgres");
      p.setProperty("prepareThreshold", "1");
      try (Connection c = DriverManager.getConnection(url, p)) {
        try (PreparedStatement ps = c.prepareStatement("selec ?")) {
          ps.setInt(1, 1);
          ps.executeQuery();
          report("failing Parse: 42601", false, "no error");
        } catch (SQLException e) { report("failing Parse: 42601", "42601".equals(e.getSQLState()), e.getSQLState()); }
        try (PreparedStatement ps = c.prepareStatement("select * from no_such_table where x = ?")) {
          ps.setInt(1, 1);
          ps.executeQuery();
          report("failing Parse: 42P01", false, "no error");
        } catch (SQLException e) { report("failing Parse: 42P01", "42P01".equals(e.getSQLState()), e.getSQLState()); }
        try (PreparedStatement ps = c.prepareStatement("select ?::int * 2")) {
          ps.setInt(1, 21);
          try (ResultSet rs = ps.executeQuery()) { rs.next(); report("failing Parse: the connection goes on", rs.getInt(1) == 42, rs.getInt(1)); }
        }
      }
    });

    run("eviction", () -> {
      Properties p = new Properties(props);
      p.setProperty("user", "postgres");
      p.setProperty("prepareThreshold", "1");
      ExecutorService pool = Executors.newFixedThreadPool(4);
      List<String> errors = Collections.synchronizedList(new ArrayList<>());
      List<Future<?>> fs = new ArrayList<>();
      for (int w = 0; w < 4; w++) {
        final int i = w;
        fs.add(pool.submit(() -> {
          try (Connection c = DriverManager.getConnection(small, p)) {
            List<PreparedStatement> stmts = new ArrayList<>();
            for (int k = 0; k < 8; k++) stmts.add(c.prepareStatement("select " + k + ", ?::int"));
            for (int n = 0; n < 30; n++) {
              int k = (n + i) % 8;
              PreparedStatement ps = stmts.get(k);
              ps.setInt(1, n);
              try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                if (rs.getInt(1) != k || rs.getInt(2) != n) errors.add(k + "/" + n);
              }
            }
          } catch (Exception e) { errors.add(e.toString()); }
          return null;
        }));
      }
      for (Future<?> f : fs) f.get();
      pool.shutdown();
      report("max_prepared_statements = 3: evicted and prepared again", errors.isEmpty(), errors);
    });

    run("options", () -> {
      Properties p = new Properties(props);
      p.setProperty("user", "postgres");
      p.setProperty("options", "-c TimeZone=Asia/Kathmandu -c search_path=drv_s,public -c statement_timeout=3456");
      String want;
      try (Connection d = DriverManager.getConnection(direct, p); Statement s = d.createStatement();
           ResultSet rs = s.executeQuery("select current_setting('TimeZone') || '|' || current_setting('search_path') || '|' || current_setting('statement_timeout')")) {
        rs.next();
        want = rs.getString(1);
      }
      boolean ok = true;
      String got = "";
      try (Connection c = DriverManager.getConnection(url, p); Connection other = DriverManager.getConnection(url, props)) {
        for (int i = 0; i < 20; i++) {
          try (Statement s = c.createStatement();
               ResultSet rs = s.executeQuery("select current_setting('TimeZone') || '|' || current_setting('search_path') || '|' || current_setting('statement_timeout')")) {
            rs.next();
            got = rs.getString(1);
            ok &= got.equals(want);
          }
          try (Statement s = other.createStatement(); ResultSet rs = s.executeQuery("show statement_timeout")) {
            rs.next();
            ok &= rs.getString(1).equals("0");
          }
        }
      }
      report("options: the values PostgreSQL itself gives, in every transaction", ok, want + " vs " + got);
    });

    System.out.println("{\"done\":true,\"driver\":\"" + org.postgresql.util.DriverInfo.DRIVER_FULL_NAME + "\"}");
  }
}
