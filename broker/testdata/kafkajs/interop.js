// kafkajs 2.2 against the broker: admin, gzip-compressed produce with headers,
// a consumer group that reads everything and commits, offsets read back.
// Usage: node interop.js HOST:PORT TOPIC COUNT. Prints one JSON summary line.
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

async function main() {
  const [broker, topic, countArg] = process.argv.slice(2);
  const count = parseInt(countArg, 10);
  const kafka = new Kafka({ clientId: 'kafkajs-interop', brokers: [broker], logLevel: logLevel.ERROR, retry: { retries: 5 } });

  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
  const listed = await admin.listTopics();

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < count; i++) {
    messages.push({ key: `k${i}`, value: `value-${i}`, headers: { n: `${i}` } });
  }
  for (let i = 0; i < messages.length; i += 100) {
    await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: messages.slice(i, i + 100) });
  }
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `${topic}-group`, sessionTimeout: 10000, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Set();
  let headerOK = true;
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed ${seen.size} of ${count}`)), 30000);
    consumer.run({
      autoCommitInterval: 100,
      eachMessage: async ({ message }) => {
        const v = message.value.toString();
        if (message.headers.n.toString() !== v.slice('value-'.length)) headerOK = false;
        seen.add(v);
        if (seen.size === count) { clearTimeout(timer); resolve(); }
      },
    }).catch(reject);
  });
  await consumer.disconnect(); // commits what was consumed

  const offsets = await admin.fetchOffsets({ groupId: `${topic}-group`, topics: [topic] });
  let committed = 0;
  for (const t of offsets) for (const p of t.partitions) committed += parseInt(p.offset, 10);
  const groups = await admin.listGroups();
  await admin.disconnect();
  console.log(JSON.stringify({
    listed: listed.includes(topic),
    consumed: seen.size,
    headerOK,
    committed,
    groupListed: groups.groups.some((g) => g.groupId === `${topic}-group`),
  }));
}

main().catch((e) => { console.error(e); process.exit(1); });
