// Package kafka is spate's Kafka driver, on the franz-go client (kgo, kadm).
// It drives a real cluster given its bootstrap addresses, or, with
// `brokers: embedded` (the default), an in-process cluster that it starts
// itself with franz-go's kfake: real Kafka protocol on loopback ports,
// nothing to install. README.md beside this file is the user's guide,
// including how to point spate at a Kafka or Redpanda cluster with TLS and
// SASL.
//
// # Options
//
// A scenario selects it as `driver: kafka` (every default) or with an
// options block, `driver: {kafka: {brokers: [localhost:9092], partitions: 12}}`:
//
//	brokers               embedded (default), or bootstrap addresses host:port, as a
//	                      list or one comma-separated string
//	topic                 the topic (default spate)
//	create-topic          create the topic if missing (default true); false: it must
//	                      exist, checked at open
//	partitions            partitions of a created topic (1..10000, default 3)
//	replication-factor    of a created topic (default 1; embedded: min(3, brokers))
//	acks                  all (default), leader, none
//	idempotent            idempotent producers (default true; needs acks: all)
//	linger                how long a batch waits to fill (default 10ms, kgo's)
//	batch-max-bytes       largest record batch (512B..100MiB, default 1000012, kgo's)
//	max-buffered-records  records a producer holds without an outcome; Send blocks
//	                      beyond (default 10000, kgo's)
//	compression           none (default), gzip, snappy, lz4, zstd
//	group                 consumer group (default spate-<run id>)
//	isolation             read_uncommitted (default), read_committed
//	commit                after-processing (default): commit only what the Handler
//	                      returned for; auto: kgo's autocommit of polled records
//	commit-interval       how often offsets are committed (default 5s, kgo's)
//	start                 run (default): read only what is sent after open;
//	                      earliest; latest
//	session-timeout       consumer group session (default 45s; embedded 3s)
//	tls                   {enabled, ca-file, cert-file, key-file, server-name,
//	                      insecure-skip-verify}; external clusters only
//	sasl                  {mechanism: PLAIN|SCRAM-SHA-256|SCRAM-SHA-512, username,
//	                      password or password-env}
//	client-id             prefix of the clients' ids (default spate)
//	metadata-max-age      refresh metadata at least this often (default 1m; embedded 10s)
//	metadata-min-age      refresh metadata at most this often (default 1s; embedded
//	                      100ms); kgo's 5s default makes moved leaders slow to find
//	connect-timeout       how long Open waits for a broker to answer (default 10s)
//	embedded              {brokers: 1..16 (default 3), sync-writes: fsync every batch
//	                      (default false), log-level: none|error|warn|info|debug
//	                      (default error)}; only with brokers: embedded
//	transactions          {id-prefix, records (default 100), max-duration (100ms),
//	                      abort (fraction aborted on purpose, default 0), seed,
//	                      timeout (10s)}: producers write in transactions (txn.go)
//
// Message keys are the scenario's own (message.keys): the driver sends
// Message.Key as the record key, and franz-go's default partitioner (murmur2
// of the key, as the Java client; sticky batches for records without a key)
// picks the partition.
//
// # Records
//
// A message is one record: the key, the value Body[48:], and the header
// spate-stamp = Body[:48] (the stamp), so the record is the scenario's
// message size and the stamp is read without touching the value. Its
// timestamp is the stamp's send time. A record without the header is
// delivered with a nil Stamp, which the tracker counts as malformed.
//
// Each spate producer is a franz-go client of its own (its own connections
// and, when idempotent, its own producer id). Publish latency is the time
// from Send to the record's promise: the outcome is reported from the
// promise, nil when the cluster confirmed the record, the error otherwise,
// and drivers.ErrUnconfirmed with acks: none.
//
// Consumers of a run share one consumer group (competing consumers, the
// classic protocol with franz-go's cooperative-sticky balancer); a
// delivery's Stream is its partition. Rebalances wait until the Handler
// returns (kgo.BlockRebalanceOnPoll), and revoked partitions are committed
// first, so a partition changes hands at a batch boundary: a clean rebalance
// redelivers nothing.
//
// With start: run, Open lists the end offsets of the topic and commits them
// for the group before any consumer exists. Every message sent after Open is
// therefore delivered to the group, whenever its members get their
// partitions: the drivers.Driver contract for NewConsumer holds without
// waiting for the group to settle. start: earliest reads the topic from the
// group's commits or the start (messages of other runs are counted as
// foreign); start: latest reads from the end as each consumer gets its
// partitions, so messages sent before that are missed and counted lost.
//
// # Transactions and pipelines
//
// With a transactions block each producer writes in transactions and
// reports a message's outcome when its transaction ends: confirmed once the
// commit is, drivers.ErrAborted when it aborted, the commit's error when
// its outcome is unknown (txn.go). Consumers with isolation
// read_committed list scenarios.AbilityReadCommitted, so the tracker counts
// a delivered aborted record as an aborted read.
//
// A Driver is a drivers.PeerOpener, opening a pipeline's output end on its
// own cluster, and a drivers.ProcessorMaker, running spate's built-in
// consume-transform-produce processor (processor.go) exactly once
// (GroupTransactSession) or at least once. Deliveries carry their offsets.
//
// # Abilities
//
// On the embedded cluster Open returns an *EmbeddedDriver, which is a
// drivers.BrokerRestarter, drivers.LeaderMover and drivers.ProtocolFaulter;
// on an external cluster it returns a *Driver, which is none of these (chaos
// runs the user's commands instead). Both are drivers.StatsReporter, and
// every consumer is a drivers.Crasher. When Env.Dial is set, every
// connection to a broker goes through it, with drivers.ProducerSide,
// ConsumerSide or AdminSide, including those to the addresses the brokers
// advertise.
//
// The embedded cluster expects faults, so its defaults are short: a 3s
// session timeout (kfake's minimum session timeout is lowered to 100ms), so
// a crashed consumer's partitions move within about 3s; a 100ms metadata
// min age, so clients find moved leaders at once. It listens on 127.0.0.1
// only, on ports chosen at start and kept across restarts, and keeps its
// data in a temporary directory removed at Close.
//
// Two things in kfake differ from a real broker, and the driver accounts
// for them. kfake moves a leader without recording where the new leader
// epoch starts, so franz-go's epoch checks (KIP-320) would take a leader
// change for data loss and rewind consumers to the start of the partition;
// the embedded cluster therefore advertises OffsetForLeaderEpoch v1, which
// turns the checks off. And a killed cluster forgets the members of consumer
// groups (a gracefully stopped one does not), so after a whole-cluster Kill
// consumers rejoin and read again from their last commit: expect duplicates
// up to a commit-interval of traffic, where a real cluster, which keeps
// members in __consumer_offsets, would show none.
//
// # Ground truth
//
// The Driver is a drivers.StatsReporter. Stats returns its own figures,
// each counted where it happens; those marked "only" when they apply:
//
// stats:begin (generated by go generate from the declaration)
//
//	produced                 records the cluster confirmed
//	produce_errors           records that failed
//	delivered                records handed to handlers
//	unstamped                records delivered without a spate-stamp header
//	partitions_assigned      partitions the consumers were assigned
//	partitions_revoked       partitions revoked from the consumers in a rebalance
//	partitions_lost          partitions taken away without a revoke, after a session expired
//	crashes                  consumers crashed
//	crash_uncommitted        records crashed consumers delivered after their last commit they saw confirmed
//	crash_redelivered        of those, the records delivered again to the consumers that took their partitions over, measured by offset when they start reading
//	leader_moves             partitions given a new leader by MoveLeaders
//	faults_injected          protocol faults injected
//	broker_restarts          RestartBroker calls (only on the embedded cluster)
//	fault_hits               requests the protocol faults answered (only on the embedded cluster)
//	txn_committed            transactions committed (only with transactions)
//	txn_aborted              transactions aborted, on purpose or after a failed write (only with transactions)
//	txn_aborted_on_purpose   of those, the transactions aborted on purpose by transactions.abort (only with transactions)
//	txn_unknown              transactions whose commit outcome is unknown, whose records failed (only with transactions)
//	txn_committed_records    records of committed transactions (only with transactions)
//	txn_aborted_records      records of aborted transactions (only with transactions)
//	processor_processed      records it wrote and committed: in committed transactions exactly-once, confirmed at least once (only with the built-in processor)
//	processor_txn_committed  its transactions committed, exactly-once (only with the built-in processor)
//	processor_txn_aborted    its transactions aborted, exactly-once (only with the built-in processor)
//	processor_crashes        instances crashed (only with the built-in processor)
//	processor_crash_pending  records crashed instances had written without committing their input offsets: in an open transaction, aborted; at least once, written again (only with the built-in processor)
//	processor_restarts       sessions replaced after a transaction failed to end (only with the built-in processor)
//
// stats:end
//
// After a run whose only fault is a consumer crash, spate's duplicates
// equal crash_redelivered exactly.
package kafka

// The tables of figures in the doc above and in README.md.
//go:generate go test -run TestStatsDocs -update-docs .
