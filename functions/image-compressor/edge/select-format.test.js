// `node --test functions/image-compressor/edge/`: the edge function as CloudFront runs it (the file's
// text, which template.yaml copies, evaluated as a script).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const SOURCE = fs.readFileSync(path.join(__dirname, 'select-format.js'), 'utf8');

// The function as deployed.
function deployed() {
  assert.doesNotMatch(SOURCE, /\$\{/, 'no placeholder: the template copies the file as it is');
  const context = {};
  vm.runInNewContext(SOURCE, context);
  return context;
}

// What a viewer request for `uri` (its query string parsed as CloudFront does) with `accept` becomes.
function request(uri, accept) {
  const headers = accept === undefined ? {} : { accept: { value: accept } };
  const [path, query] = uri.split('?');
  const querystring = {};
  for (const pair of (query || '').split('&').filter(Boolean)) {
    const [name, value] = pair.split('=');
    if (querystring[name]) {
      const first = querystring[name];
      querystring[name] = { value: value || '', multiValue: [...(first.multiValue || [{ value: first.value }]), { value: value || '' }] };
    } else {
      querystring[name] = { value: value || '' };
    }
  }
  // Objects of the function's own realm, as plain data.
  return JSON.parse(JSON.stringify(deployed().handler({ request: { method: 'GET', uri: path, headers, querystring } })));
}

const CHROME = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
const SAFARI_15 = 'image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5';
const OLD = 'image/png,image/*;q=0.8,*/*;q=0.5';

test('the most compact format the browser accepts and the variant has', () => {
  assert.equal(request('/small/photos/a.png.jpg?formats=avif.webp', CHROME).uri, '/small/photos/a.png.avif');
  assert.equal(request('/small/photos/a.png.jpg?formats=avif.webp', SAFARI_15).uri, '/small/photos/a.png.webp');
  assert.equal(request('/small/photos/a.png.jpg?formats=avif.webp', OLD).uri, '/small/photos/a.png.jpg');
});

test('only formats the URL says exist are chosen, whatever the browser accepts', () => {
  // WebP smaller than the JPEG, AVIF not: no AVIF was written.
  assert.equal(request('/small/a.jpg?formats=webp', CHROME).uri, '/small/a.webp');
  assert.equal(request('/small/a.jpg?formats=avif', SAFARI_15).uri, '/small/a.jpg');
  // Neither was smaller, or a URL from before the formats (or a hand-written one): the JPEG.
  assert.equal(request('/small/a.jpg', CHROME).uri, '/small/a.jpg');
  assert.equal(request('/small/a.jpg?formats=', CHROME).uri, '/small/a.jpg');
  assert.equal(request('/small/a.jpg?formats=png.gif', CHROME).uri, '/small/a.jpg');
  assert.equal(request('/small/a.jpg?formats=AVIF', CHROME).uri, '/small/a.avif');
  // A repeated parameter is ambiguous: the JPEG, which always exists.
  assert.equal(request('/small/a.jpg?formats=avif&formats=webp', CHROME).uri, '/small/a.jpg');
  assert.equal(request('/small/a.jpg?other=avif', CHROME).uri, '/small/a.jpg');
});

test('the rewritten request carries no query string: one cache entry per variant and format', () => {
  const a = request('/small/a.jpg?formats=avif.webp', CHROME);
  const b = request('/small/a.jpg?formats=avif', CHROME);
  assert.deepEqual([a.uri, a.querystring], ['/small/a.avif', {}]);
  assert.deepEqual([b.uri, b.querystring], ['/small/a.avif', {}]);
  assert.deepEqual(request('/small/a.jpg?formats=avif.webp&v=2', OLD).querystring, {});
});

test('wildcards and q=0 name no format', () => {
  const all = '/small/a.jpg?formats=avif.webp';
  assert.equal(request(all, '*/*').uri, '/small/a.jpg');
  assert.equal(request(all, 'image/*').uri, '/small/a.jpg');
  assert.equal(request(all, 'image/avif;q=0, image/webp').uri, '/small/a.webp');
  assert.equal(request(all, 'image/avif; q=0.0').uri, '/small/a.jpg');
  assert.equal(request(all, 'IMAGE/WEBP;Q=0.5').uri, '/small/a.webp');
  assert.equal(request(all, '').uri, '/small/a.jpg');
  assert.equal(request(all, undefined).uri, '/small/a.jpg');
});

test('only a variant JPEG is rewritten', () => {
  // The whole source key, extension included, under the variant; the last `.jpg` is the output's.
  assert.equal(request('/thumbnail/photos/a.jpg.jpg?formats=webp', CHROME).uri, '/thumbnail/photos/a.jpg.webp');
  assert.equal(request('/thumbnail.sha256/ab12.jpg?formats=webp', CHROME).uri, '/thumbnail.sha256/ab12.webp');
  assert.equal(request('/thumbnail/%C3%A9t%C3%A9%202024.jpg?formats=webp', CHROME).uri, '/thumbnail/%C3%A9t%C3%A9%202024.webp');
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
    assert.equal(request(uri + '?formats=avif.webp', CHROME).uri, uri, uri);
  }
});

test('the rest of the request passes unchanged', () => {
  const out = JSON.parse(JSON.stringify(deployed().handler({
    request: {
      method: 'GET',
      uri: '/small/a.jpg',
      headers: { accept: { value: CHROME }, host: { value: 'd111.cloudfront.net' } },
      querystring: { formats: { value: 'webp' } },
    },
  })));
  assert.deepEqual(out, {
    method: 'GET',
    uri: '/small/a.webp',
    headers: { accept: { value: CHROME }, host: { value: 'd111.cloudfront.net' } },
    querystring: {},
  });
});

test('the code stays within what cloudfront-js-2.0 runs', () => {
  assert.doesNotMatch(SOURCE, /\brequire\(|\bimport\b|\bexport\b|module\.exports|\basync\b|\bawait\b/);
  assert.ok(Buffer.byteLength(SOURCE) < 10 * 1024, 'CloudFront Functions hold at most 10 KB');
});
