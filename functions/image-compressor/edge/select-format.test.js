// `node --test functions/image-compressor/edge/`: the edge function as CloudFront runs it (the file's
// text with its placeholder filled in, as template.yaml's !Sub does, evaluated as a script).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const SOURCE = fs.readFileSync(path.join(__dirname, 'select-format.js'), 'utf8');

// The function with FORMATS = `formats`, as deployed.
function deployed(formats) {
  assert.equal(SOURCE.split('${').length, 2, 'one placeholder, filled in by the stack');
  assert.ok(SOURCE.includes("var FORMATS = '${Formats}';"));
  const context = {};
  vm.runInNewContext(SOURCE.replace('${Formats}', formats), context);
  return context;
}

// What a viewer request for `uri` with `accept` becomes.
function request(formats, uri, accept) {
  const headers = accept === undefined ? {} : { accept: { value: accept } };
  return deployed(formats).handler({ request: { method: 'GET', uri, headers, querystring: {} } });
}

const CHROME = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
const SAFARI_15 = 'image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5';
const OLD = 'image/png,image/*;q=0.8,*/*;q=0.5';

test('the most compact format the browser accepts and the stack writes', () => {
  assert.equal(request('avif,webp', '/small/photos/a.png.jpg', CHROME).uri, '/small/photos/a.png.avif');
  assert.equal(request('avif,webp', '/small/photos/a.png.jpg', SAFARI_15).uri, '/small/photos/a.png.webp');
  assert.equal(request('avif,webp', '/small/photos/a.png.jpg', OLD).uri, '/small/photos/a.png.jpg');
});

test('only formats the stack writes are chosen', () => {
  assert.equal(request('webp', '/small/a.jpg', CHROME).uri, '/small/a.webp');
  assert.equal(request('', '/small/a.jpg', CHROME).uri, '/small/a.jpg');
  assert.equal(request(' AVIF ', '/small/a.jpg', CHROME).uri, '/small/a.avif');
});

test('wildcards and q=0 name no format', () => {
  assert.equal(request('avif,webp', '/small/a.jpg', '*/*').uri, '/small/a.jpg');
  assert.equal(request('avif,webp', '/small/a.jpg', 'image/*').uri, '/small/a.jpg');
  assert.equal(request('avif,webp', '/small/a.jpg', 'image/avif;q=0, image/webp').uri, '/small/a.webp');
  assert.equal(request('avif,webp', '/small/a.jpg', 'image/avif; q=0.0').uri, '/small/a.jpg');
  assert.equal(request('avif,webp', '/small/a.jpg', 'IMAGE/WEBP;Q=0.5').uri, '/small/a.webp');
  assert.equal(request('avif,webp', '/small/a.jpg', '').uri, '/small/a.jpg');
  assert.equal(request('avif,webp', '/small/a.jpg', undefined).uri, '/small/a.jpg');
});

test('only a variant JPEG is rewritten', () => {
  // The whole source key, extension included, under the variant; the last `.jpg` is the output's.
  assert.equal(request('webp', '/thumbnail/photos/a.jpg.jpg', CHROME).uri, '/thumbnail/photos/a.jpg.webp');
  assert.equal(request('webp', '/thumbnail.sha256/ab12.jpg', CHROME).uri, '/thumbnail.sha256/ab12.webp');
  assert.equal(request('webp', '/thumbnail/%C3%A9t%C3%A9%202024.jpg', CHROME).uri, '/thumbnail/%C3%A9t%C3%A9%202024.webp');
  for (const uri of [
    '/manifest/photos/a.jpg.json',
    '/manifest/photos/a.jpg',
    '/manifest.sha256/ab12.jpg',
    '/small/a.webp',
    '/small/a.avif',
    '/small/a.JPG.png',
    '/a.jpg',
    '/small/.jpg',
    '//a.jpg',
    '/',
  ]) {
    assert.equal(request('avif,webp', uri, CHROME).uri, uri, uri);
  }
});

test('the rest of the request passes unchanged', () => {
  const out = deployed('webp').handler({
    request: {
      method: 'GET',
      uri: '/small/a.jpg',
      headers: { accept: { value: CHROME }, host: { value: 'd111.cloudfront.net' } },
      querystring: { v: { value: '2' } },
    },
  });
  assert.deepEqual(out, {
    method: 'GET',
    uri: '/small/a.webp',
    headers: { accept: { value: CHROME }, host: { value: 'd111.cloudfront.net' } },
    querystring: { v: { value: '2' } },
  });
});

test('the code stays within what cloudfront-js-2.0 runs', () => {
  assert.doesNotMatch(SOURCE, /\brequire\(|\bimport\b|\bexport\b|module\.exports|\basync\b|\bawait\b/);
  assert.ok(Buffer.byteLength(SOURCE) < 10 * 1024, 'CloudFront Functions hold at most 10 KB');
});
