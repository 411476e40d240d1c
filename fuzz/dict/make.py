#!/usr/bin/env python3
"""Writes the libFuzzer dictionaries of fuzz/: protocol.dict for the protocol targets
(framer_client, framer_server, command_parser, reply_parser, session) and one per other
target. Run from anywhere: fuzz/dict/make.py"""
import os

os.chdir(os.path.dirname(os.path.abspath(__file__)))
LMTP = ['LHLO', 'HELO', 'EHLO', 'MAIL FROM:', 'RCPT TO:', 'DATA', 'BDAT', 'LAST', 'RSET', 'NOOP', 'QUIT', 'VRFY', 'EXPN',
        'HELP', 'STARTTLS', 'AUTH', '<>', '<alice@lab.test>', 'SIZE=', 'BODY=8BITMIME', 'BODY=7BIT', 'BODY=BINARYMIME',
        'SMTPUTF8', 'NOTIFY=SUCCESS,FAILURE', 'NOTIFY=NEVER', 'ORCPT=rfc822;', 'RET=HDRS', 'RET=FULL', 'ENVID=', 'AUTH=<>',
        'PIPELINING', 'ENHANCEDSTATUSCODES', 'CHUNKING', '8BITMIME', 'DSN', 'BINARYMIME', 'IGNOREQUOTA', 'XCLIENT',
        '\r\n', '\n', '\r', '\r\n.\r\n', '\n.\n', '\n.\r\n', '\r.\r', '\r\n.\n', '\r\n.\r', '..', '\x00',
        '220 ', '221 ', '250 ', '250-', '251 ', '252 ', '334 ', '354 ', '350 ', '421 ', '450 ', '451 ', '452 ', '500 ',
        '501 ', '502 ', '503 ', '550 ', '552 ', '554 ', '2.0.0 ', '2.1.0 ', '2.1.5 ', '4.2.1 ', '4.5.3 ', '5.1.1 ',
        '5.5.1 ', '5.5.2 ', 'lockers']
EXTRA = {
    'protocol': [],
    'scenario': ['id: ', 'title: ', 'role: server', 'role: client', 'rules: [', 'requires: [', 'faults: [', 'timeout: ',
                 'steps:\n', '  - C: ', '  - S: ', '  - C|: ', '  - C/1: ', '  - S?: ', '  - C?: ', '  - S|: ', 'data: ',
                 '{size: ', 'repeat: {times: ', ', steps: [', 'wait: ', 'close: true', 'accept: true', 'trigger: true',
                 'no-connection: ', 'closed', 'none', 'content', 'any', '~ ', '2xx', '{rcpt1}', '{bad_rcpt}', '{from}',
                 '{helo}', '{x*', 'cyrus-lockers', 'inject@eod#1', 'text=', '\\r\\n'],
    'faults': ['inject', 'inject-after', 'replace', 'drop', 'dup', 'swap', 'split', 'delay', 'fragment', 'coalesce',
               'close', 'reset', 'shutdown', 'early', 'bare-lf', 'bare-cr', 'smuggle', 'long-line', 'after-quit',
               'pipeline-body', '@greeting', '@eod', '@content', '@data+', '@any#', '@rcpt#', '@mail', '#2+', ',text=',
               ',code=', ',line=', ',txn=', ',ms=', ',jitter=', ',size=', ',len=', ',variant=', ',conn=', ',every=',
               ',p=', ',times=', ',dir=', 'lflf', 'crcr', 'crlf', 'lfcr', 'lfcrlf', 'crlflf', 'crcrlf', 'crlfcr',
               'cyrus-lockers', 'dovecot-multiline-split', 'spampd-single-data-reply', 'lost-final-reply',
               'exim-452-then-250', 'slow-data-done', '='],
    'control': ['GET\n', 'POST\n', 'DELETE\n', 'PUT\n', '/faults', '/faults/', '/sessions', '/presets', 'Bearer s3cret',
                '{"name":', '"spec":', '"type":', '"attributes":', '"toxicity":', '"stream":', '"downstream"',
                '"upstream"', '{', '}', '[', ']', 'null', 'true', '1e999', '"\\u0000"', 'cyrus-lockers',
                'inject@eod#1,text=350 lockers'],
    'importer_jsonl': ['{"t":', '"conn":', '"ev":', '"open"', '"data"', '"close"', '"end"', '"fault"', '"status"',
                       '"timeout"', '"meta"', '"dir":"c"', '"dir":"s"', '"data":"', '"client":', '"server":',
                       '"offset":', '"len":', '"text":', '"format":"lockstep-recording"', '"ordered":false', '\\r\\n',
                       '\\u00ff', '\\u0100', '}\n'],
    'importer_postfix': ['postfix/lmtp[', 'postfix/qmgr[', 'postfix/smtp[', ']: ', '> ', '< ', ': ', 'connect to',
                         'Connected to', 'lmtp_stream_setup: ', 'smtp_get: ', 'smtp_fputs: ', 'vstream_fflush',
                         'status=sent', 'status=bounced', 'status=deferred', '(in reply to end of DATA command)', 'dsn=',
                         'relay=', 'Nov 21 06:10:51 ', '2026-11-21T06:10:51.123456+00:00 ', 'lab.test[127.0.0.1]:24',
                         'private/dovecot-lmtp', 'message may be sent more than once'],
    'importer_socat': ['> 2026/11/21 05:24:48.000634848  length=', '< 2026/11/21 05:24:48.000634394  length=',
                       ' from=0 to=', '\\r\n', '--\n'],
}


def quoted(word):
    out = ''
    for ch in word:
        if ch in '"\\':
            out += '\\' + ch
        elif ord(ch) < 0x20 or ord(ch) > 0x7e:
            out += '\\x%02X' % ord(ch)
        else:
            out += ch
    return '"' + out + '"'


for name, extra in EXTRA.items():
    with open(name + '.dict', 'w') as f:
        f.write('# libFuzzer dictionary (written by fuzz/dict/make.py)\n')
        for w in LMTP + extra:
            f.write(quoted(w) + '\n')
