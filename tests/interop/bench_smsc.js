// A quiet SMSC for benchmarks, built on the npm `smpp` package (not Tocsin code): it answers
// every submit_sm with a message id and sends a delivery receipt (deliver_sm, stat:DELIVRD,
// receipted_message_id TLV) for each one asking for it, and counts submissions per
// destination number so that duplicates are counted at the SMSC.
//
// Usage: node bench_smsc.js PORT
// Prints "READY <port>" once listening. Commands on stdin, one per line:
//   stats  -> one JSON line {submits, numbers, duplicates, receipts_sent, receipts_acked, binds}
//   reset  -> forget every count
//   mark   -> print "FIRST <epoch ms>" at the next submit_sm (launch latency)
'use strict';

const smpp = require('smpp');
const readline = require('readline');

const port = parseInt(process.argv[2] || '0', 10);
let nextId = 1;
let counts = new Map();
let submits = 0;
let receiptsSent = 0;
let receiptsAcked = 0;
let binds = 0;
let marked = false;

function stamp(date) {
  const p = (n) => String(n).padStart(2, '0');
  return p(date.getUTCFullYear() % 100) + p(date.getUTCMonth() + 1) + p(date.getUTCDate()) +
    p(date.getUTCHours()) + p(date.getUTCMinutes());
}

const server = smpp.createServer((session) => {
  session.on('error', () => {});
  session.on('bind_transceiver', (pdu) => {
    binds += 1;
    session.send(pdu.response({ system_id: 'NODESMSC' }));
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    session.close();
  });
  session.on('submit_sm', (pdu) => {
    if (marked) {
      marked = false;
      process.stdout.write('FIRST ' + (performance.timeOrigin + performance.now()).toFixed(3) + '\n');
    }
    submits += 1;
    counts.set(pdu.destination_addr, (counts.get(pdu.destination_addr) || 0) + 1);
    const messageId = (nextId++).toString(16).toUpperCase();
    session.send(pdu.response({ message_id: messageId }));
    if (pdu.registered_delivery & 0x03) {
      const now = stamp(new Date());
      receiptsSent += 1;
      session.deliver_sm({
        source_addr_ton: pdu.dest_addr_ton,
        source_addr_npi: pdu.dest_addr_npi,
        source_addr: pdu.destination_addr,
        dest_addr_ton: pdu.source_addr_ton,
        dest_addr_npi: pdu.source_addr_npi,
        destination_addr: pdu.source_addr,
        esm_class: 0x04,
        data_coding: 0,
        short_message: Buffer.from('id:' + messageId + ' sub:001 dlvrd:001 submit date:' + now +
          ' done date:' + now + ' stat:DELIVRD err:000 text:', 'ascii'),
        receipted_message_id: messageId,
        message_state: 2,
      }, () => { receiptsAcked += 1; });
    }
  });
});

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const command = line.trim();
  if (command === 'stats') {
    let duplicates = 0;
    for (const n of counts.values()) duplicates += n - 1;
    process.stdout.write(JSON.stringify({ submits, numbers: counts.size, duplicates,
      receipts_sent: receiptsSent, receipts_acked: receiptsAcked, binds }) + '\n');
  } else if (command === 'reset') {
    counts = new Map();
    submits = receiptsSent = receiptsAcked = binds = 0;
  } else if (command === 'mark') {
    marked = true;
  }
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write('READY ' + server.address().port + '\n');
});

process.on('SIGTERM', () => process.exit(0));
