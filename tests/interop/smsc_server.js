// A minimal SMSC written with the npm `smpp` package (not Tocsin code), used to check that
// Tocsin's SMPP client interoperates with an independent SMPP 3.4 implementation.
//
// Usage: node smsc_server.js PORT
// Prints "READY <port>" once listening, then one JSON line per event on stdout.
'use strict';

const smpp = require('smpp');

const port = parseInt(process.argv[2] || '0', 10);
let nextId = 1;

function log(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function stamp(date) {
  const p = (n) => String(n).padStart(2, '0');
  return p(date.getUTCFullYear() % 100) + p(date.getUTCMonth() + 1) + p(date.getUTCDate()) +
    p(date.getUTCHours()) + p(date.getUTCMinutes());
}

const server = smpp.createServer((session) => {
  session.on('error', (err) => log({ event: 'error', message: String(err) }));

  session.on('bind_transceiver', (pdu) => {
    log({ event: 'bind_transceiver', system_id: pdu.system_id, password: pdu.password,
      interface_version: pdu.interface_version });
    session.send(pdu.response({ system_id: 'NODESMSC' }));
  });

  session.on('enquire_link', (pdu) => session.send(pdu.response()));

  session.on('unbind', (pdu) => {
    log({ event: 'unbind' });
    session.send(pdu.response());
    session.close();
  });

  session.on('submit_sm', (pdu) => {
    const messageId = 'NODE' + String(nextId++).padStart(6, '0');
    const sm = pdu.short_message || {};
    log({
      event: 'submit_sm',
      message_id: messageId,
      source_addr: pdu.source_addr,
      source_addr_ton: pdu.source_addr_ton,
      source_addr_npi: pdu.source_addr_npi,
      destination_addr: pdu.destination_addr,
      dest_addr_ton: pdu.dest_addr_ton,
      dest_addr_npi: pdu.dest_addr_npi,
      data_coding: pdu.data_coding,
      esm_class: pdu.esm_class,
      registered_delivery: pdu.registered_delivery,
      text: typeof sm.message === 'string' ? sm.message : String(sm.message),
      udh: (sm.udh || []).map((ie) => Buffer.from(ie).toString('hex')),
      // SAR TLVs and message_payload (SMPP 3.4 §5.3.2.22-24, §5.3.2.32), when sent.
      sar_msg_ref_num: pdu.sar_msg_ref_num,
      sar_total_segments: pdu.sar_total_segments,
      sar_segment_seqnum: pdu.sar_segment_seqnum,
      payload: pdu.message_payload ? String(pdu.message_payload.message) : undefined,
    });
    session.send(pdu.response({ message_id: messageId }));
    if (pdu.registered_delivery & 0x03) {
      const now = stamp(new Date());
      const text = 'id:' + messageId + ' sub:001 dlvrd:001 submit date:' + now +
        ' done date:' + now + ' stat:DELIVRD err:000 text:';
      session.deliver_sm({
        source_addr_ton: pdu.dest_addr_ton,
        source_addr_npi: pdu.dest_addr_npi,
        source_addr: pdu.destination_addr,
        dest_addr_ton: pdu.source_addr_ton,
        dest_addr_npi: pdu.source_addr_npi,
        destination_addr: pdu.source_addr,
        esm_class: 0x04,
        data_coding: 0,
        short_message: Buffer.from(text, 'ascii'),
        receipted_message_id: messageId,
        message_state: 2,
      }, (resp) => {
        log({ event: 'deliver_sm_resp', message_id: messageId, command_status: resp.command_status });
      });
    }
  });
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write('READY ' + server.address().port + '\n');
});

process.on('SIGTERM', () => process.exit(0));
