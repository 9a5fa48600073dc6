//! The JVM options of every node.

/// JVM options from Cassandra 5.0's conf/jvm*-server.options that the daemon
/// needs on JDK 17 (it reaches into JDK internals), plus a heap sized for a
/// shared 2-core machine rather than Cassandra's auto-sizing.
pub const JVM_OPTIONS: &[&str] = &[
    "-Xms512m",
    "-Xmx1g",
    // Cassandra warns that running on after an OutOfMemoryError risks corrupting data.
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.net.preferIPv4Stack=true",
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports=java.sql/java.sql=ALL-UNNAMED",
    "--add-exports=java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports=jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    // Without it Netty falls back to slower direct buffers that count against MaxDirectMemory.
    "-Dio.netty.tryReflectionSetAccessible=true",
    // Nodes on one machine's loopback see each other's gossip at once: a joining node need
    // not wait 30 s for the ring to settle, nor any node 8 s or more for gossip to.
    "-Dcassandra.ring_delay_ms=5000",
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    // Keeps stdout/stderr (redirected to a file) open, so JVM-level failures are recorded.
    "-Dcassandra-foreground=yes",
];
