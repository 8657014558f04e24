// examples/web/src/uischema.js — from what lowcode.form_schema returns to what RJSF takes:
// the Ajv class for the form's draft, the uiSchema for a locale, and the database's errors as an
// RJSF error schema. No React here (main.jsx renders).

import Ajv from 'ajv';
import Ajv2019 from 'ajv/dist/2019';
import Ajv2020 from 'ajv/dist/2020';
import AjvDraft04 from 'ajv-draft-04';
import draft06 from 'ajv/lib/refs/json-schema-draft-06.json';

export const LOCALES = ['en', 'zh-CN'];
export const FALLBACK_LOCALE = 'en';

// The Ajv class for a "$schema" URI (lowcode's default draft is 2020-12).
export function ajvFor(draft) {
  const d = String(draft || 'https://json-schema.org/draft/2020-12/schema');
  if (d.includes('2020-12')) return { name: 'Ajv2020', options: { AjvClass: Ajv2020 } };
  if (d.includes('2019-09')) return { name: 'Ajv2019', options: { AjvClass: Ajv2019 } };
  if (d.includes('draft-04')) return { name: 'Ajv (draft-04)', options: { AjvClass: AjvDraft04 } };
  if (d.includes('draft-06')) {
    return { name: 'Ajv (draft-06)', options: { AjvClass: Ajv, additionalMetaSchemas: [draft06] } };
  }
  return { name: 'Ajv', options: { AjvClass: Ajv } };
}

// form_schema bundles the registered schemas a form's "$ref"s reach under "$defs" (or, before
// 2019-09, "definitions"), each with its "$id". RJSF finds such embedded resources by "$id" only in
// 2020-12 documents; for the other drafts, turn every "$ref" to a bundled resource (and every
// "#..." pointer inside one) into a pointer from the document's root, and drop their "$id"s.
export function localizeRefs(schema) {
  if (!schema || typeof schema !== 'object') return schema;
  const draft = String(schema.$schema || '');
  if (draft === '' || draft.includes('2020-12')) return schema;
  const doc = JSON.parse(JSON.stringify(schema));
  const resources = new Map(); // $id without fragment -> pointer of the resource from the root
  for (const container of ['$defs', 'definitions']) {
    for (const [key, def] of Object.entries(doc[container] || {})) {
      if (def && typeof def === 'object' && typeof def.$id === 'string') {
        const seg = encodeURIComponent(key.replace(/~/g, '~0').replace(/\//g, '~1'));
        resources.set(def.$id.replace(/#$/, ''), `#/${container}/${seg}`);
      }
    }
  }
  if (resources.size === 0) return schema;
  const resolve = (ref, base) => {
    try {
      return base ? new URL(ref, base).href : new URL(ref).href;
    } catch (e) {
      return ref;
    }
  };
  const walk = (node, base, prefix) => {
    if (Array.isArray(node)) return node.forEach((n) => walk(n, base, prefix));
    if (!node || typeof node !== 'object') return;
    let here = base;
    let local = prefix;
    if (typeof node.$id === 'string' && resources.has(node.$id.replace(/#$/, ''))) {
      here = node.$id.replace(/#$/, '');
      local = resources.get(here);
      delete node.$id;
    }
    if (typeof node.$ref === 'string') {
      const ref = node.$ref;
      if (ref.startsWith('#/') || ref === '#') {
        if (local) node.$ref = local + ref.slice(1);
      } else if (!ref.startsWith('#')) {
        const [uri, frag = ''] = resolve(ref, here).split('#');
        if (resources.has(uri)) node.$ref = resources.get(uri) + frag;
      }
    }
    for (const [k, v] of Object.entries(node)) if (k !== 'enum' && k !== 'const') walk(v, here, local);
  };
  walk(doc, undefined, '');
  return doc;
}

// A text of the UI schema: a string, or {"en": ..., "zh-CN": ...} (missing: English, then nothing).
export function localized(t, locale) {
  if (t === null || t === undefined) return undefined;
  if (typeof t === 'string') return t;
  if (typeof t === 'object') {
    if (typeof t[locale] === 'string') return t[locale];
    if (typeof t[FALLBACK_LOCALE] === 'string') return t[FALLBACK_LOCALE];
  }
  return undefined;
}

// "$ref" within the bundled document: "#/..." pointers and the "$id"s of bundled resources.
function deref(schema, root, seen = 0) {
  if (!schema || typeof schema !== 'object' || typeof schema.$ref !== 'string' || seen > 16) return schema;
  const ref = schema.$ref;
  let target;
  if (ref.startsWith('#/')) {
    target = pointer(root, ref.slice(1));
  } else {
    const [uri, frag] = ref.split('#');
    const res = Object.values(root.$defs || root.definitions || {}).find((d) => d && d.$id === uri);
    target = res && frag ? pointer(res, frag) : res;
  }
  return target ? deref(target, root, seen + 1) : schema;
}

function pointer(doc, ptr) {
  if (!ptr) return doc;
  return ptr
    .split('/')
    .slice(1)
    .reduce((node, seg) => (node == null ? node : node[decodeURIComponent(seg).replace(/~1/g, '/').replace(/~0/g, '~')]), doc);
}

// The schema and the uiSchema node of a dotted path ("" is the form; "site.building" a nested
// field; a segment under an array field names a property of its items). Creates the uiSchema
// nodes on the way. Returns null when the schema has no such field.
function nodeAt(ui, root, path) {
  let schema = deref(root, root);
  let node = ui;
  for (const seg of path === '' ? [] : path.split('.')) {
    while (schema && (schema.type === 'array' || schema.items) && !(schema.properties && seg in schema.properties)) {
      if (!schema.items || Array.isArray(schema.items)) return null;
      schema = deref(schema.items, root);
      node = node.items = node.items || {};
    }
    const next = schema && schema.properties && schema.properties[seg];
    if (!next) return null;
    schema = deref(next, root);
    node = node[seg] = node[seg] || {};
  }
  return { schema, node };
}

// Items of an array of plain values need no label of their own ("photos-1", "photos-2"): the
// array's label is above them.
function hideItemLabels(node, schema, root, depth = 0) {
  schema = deref(schema, root);
  if (!schema || typeof schema !== 'object' || depth > 8) return;
  for (const [name, sub] of Object.entries(schema.properties || {})) {
    const s = deref(sub, root);
    if (!s || typeof s !== 'object') continue;
    if (s.type === 'object' || s.properties) {
      hideItemLabels((node[name] = node[name] || {}), s, root, depth + 1);
    } else if (s.type === 'array' && s.items && !Array.isArray(s.items)) {
      const items = deref(s.items, root);
      if (items && items.type !== 'object' && !items.properties) {
        const n = (node[name] = node[name] || {});
        n.items = { 'ui:label': false, ...(n.items || {}) };
      }
    }
  }
}

const WIDGETS = {
  text: 'text',
  textarea: 'textarea',
  select: 'select',
  radio: 'radio',
  checkbox: 'checkbox',
  date: 'date',
  datetime: 'datetime',
  email: 'email',
  number: 'updown',
  password: 'password',
  hidden: 'hidden',
};

// The RJSF uiSchema of a form_schema answer for a locale: field order per object level (the
// author's, from "order", overridden by the UI schema's "order"), and per field its label, help,
// placeholder, widget and enum labels. The form's title and description go on the root.
export function buildUiSchema(spec, locale, messages = {}) {
  const ui = (spec && spec.ui) || {};
  const root = spec.schema || {};
  const uiSchema = {};
  const orders = { ...(spec.order || {}), ...(ui.order || {}) };
  for (const [path, names] of Object.entries(orders)) {
    const at = nodeAt(uiSchema, root, path);
    if (!at || !Array.isArray(names)) continue;
    const props = Object.keys((at.schema && at.schema.properties) || {});
    // Names the schema no longer has are left out; fields the order does not name come last.
    at.node['ui:order'] = [...names.filter((n) => props.includes(n)), '*'];
  }
  for (const [path, field] of Object.entries(ui.fields || {})) {
    if (!field || typeof field !== 'object') continue;
    const at = nodeAt(uiSchema, root, path);
    if (!at) continue;
    const label = localized(field.label, locale);
    if (label !== undefined) at.node['ui:title'] = label;
    const help = localized(field.help, locale);
    if (help !== undefined) at.node['ui:help'] = help;
    const placeholder = localized(field.placeholder, locale);
    if (placeholder !== undefined) at.node['ui:placeholder'] = placeholder;
    if (field.widget && WIDGETS[field.widget]) {
      let widget = WIDGETS[field.widget];
      if (widget === 'checkbox' && at.schema && at.schema.type === 'array') widget = 'checkboxes';
      if (at.schema && at.schema.type === 'array' && widget !== 'checkboxes' && widget !== 'hidden') {
        at.node.items = { ...(at.node.items || {}), 'ui:widget': widget };
      } else {
        at.node['ui:widget'] = widget;
      }
    }
    if (field.enum_labels && typeof field.enum_labels === 'object') {
      const names = {};
      for (const [value, t] of Object.entries(field.enum_labels)) {
        const text = localized(t, locale);
        if (text !== undefined) names[value] = text;
      }
      at.node['ui:enumNames'] = names;
      // An array of enum values: the labels are its items' (and, for checkboxes, its own).
      if (at.schema && at.schema.type === 'array') at.node.items = { ...(at.node.items || {}), 'ui:enumNames': names };
    }
  }
  hideItemLabels(uiSchema, root, root);
  const title = localized(ui.title, locale) || localized(spec.title, locale) || localized(root.title, locale) || spec.form;
  if (title) uiSchema['ui:title'] = title;
  const description = localized(ui.description, locale);
  if (description) uiSchema['ui:description'] = description;
  if (messages.submit) uiSchema['ui:submitButtonOptions'] = { submitText: messages.submit };
  return uiSchema;
}

// The issues of a refused write ({path, field, keyword, message, ...}; `field` is the JSON pointer
// of the field the message belongs to) as an RJSF error schema: {site: {building: {__errors: [..]}},
// photos: {1: {__errors: [..]}}}. Issues of the whole form go on the root.
export function errorSchemaOf(issues) {
  const errorSchema = {};
  for (const issue of issues || []) {
    const ptr = typeof issue.field === 'string' ? issue.field : issue.path || '';
    let node = errorSchema;
    for (const seg of ptr === '' ? [] : ptr.split('/').slice(1)) {
      const key = seg.replace(/~1/g, '/').replace(/~0/g, '~');
      node = node[key] = node[key] || {};
    }
    (node.__errors = node.__errors || []).push(issue.message);
  }
  return errorSchema;
}
