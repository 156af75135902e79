#!/usr/bin/env node
// `npm run api:update`: writes api/<lib>.api.md, the public API of every lib (libs/<lib>/src/index.ts),
// computed with the TypeScript compiler API: each exported name with its kind (class, function, const,
// type, interface, enum, namespace) and, for classes, their public members that are not `@internal`
// (`@internal` members are stripped from the shipped .d.ts by scripts/build-libs.js, `stripInternal`).
//
//   node scripts/api-report.js           rewrite api/*.api.md
//   node scripts/api-report.js --check   exit 1 and name the libs whose report differs
//
// test/api-report.spec.ts recomputes the reports in CI and fails on any difference, so an accidental
// export (or a removed one) shows up in review as a diff of api/<lib>.api.md. Libs without a
// src/index.ts (skeletons) have no report yet.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const ROOT = path.resolve(__dirname, '..');
const API_DIR = path.join(ROOT, 'api');
const LIBS_DIR = path.join(ROOT, 'libs');

/** Libs with a public entry point: [{ name (folder), pkgName, entry }]. */
function libsWithEntry() {
  const out = [];
  for (const name of fs.readdirSync(LIBS_DIR).sort()) {
    const entry = path.join(LIBS_DIR, name, 'src', 'index.ts');
    const pkgFile = path.join(LIBS_DIR, name, 'package.json');
    if (!fs.existsSync(entry) || !fs.existsSync(pkgFile)) continue;
    out.push({ name, pkgName: JSON.parse(fs.readFileSync(pkgFile, 'utf8')).name, entry });
  }
  return out;
}

/** A program over every lib entry, with the root tsconfig (its `paths` map @redwing/* to the sources). */
function createProgram(entries) {
  const configFile = path.join(ROOT, 'tsconfig.json');
  const { config } = ts.readConfigFile(configFile, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, ROOT, undefined, configFile);
  const options = { ...parsed.options, noEmit: true, incremental: false, types: ['node'] };
  return ts.createProgram({ rootNames: entries, options });
}

const isInternal = (node) => ts.getJSDocTags(node).some((t) => t.tagName.text === 'internal');

const hasModifier = (node, kind) => (ts.getModifiers(node) ?? []).some((m) => m.kind === kind);

/** The kinds a symbol's declarations give it (a name can be a value and a type at once). */
function kindsOf(symbol) {
  const kinds = new Set();
  for (const d of symbol.declarations ?? []) {
    if (ts.isClassDeclaration(d))
      kinds.add(hasModifier(d, ts.SyntaxKind.AbstractKeyword) ? 'abstract class' : 'class');
    else if (ts.isFunctionDeclaration(d)) kinds.add('function');
    else if (ts.isVariableDeclaration(d) || ts.isBindingElement(d)) {
      // `export const { A, B: C } = …` declares binding elements: walk up to the declaration list.
      let list = d.parent;
      while (list && !ts.isVariableDeclarationList(list)) list = list.parent;
      kinds.add(list && list.flags & ts.NodeFlags.Const ? 'const' : 'let');
    } else if (ts.isTypeAliasDeclaration(d)) kinds.add('type');
    else if (ts.isInterfaceDeclaration(d)) kinds.add('interface');
    else if (ts.isEnumDeclaration(d)) kinds.add('enum');
    else if (ts.isModuleDeclaration(d)) kinds.add('namespace');
    else kinds.add(ts.SyntaxKind[d.kind]);
  }
  return [...kinds].sort();
}

/** Public, non-`@internal` members of a class declaration, as "static? readonly? kind name". */
function classMembers(decl) {
  const lines = [];
  for (const m of decl.members) {
    if (isInternal(m)) continue;
    if (hasModifier(m, ts.SyntaxKind.PrivateKeyword) || hasModifier(m, ts.SyntaxKind.ProtectedKeyword))
      continue;
    if (m.name && ts.isPrivateIdentifier(m.name)) continue;
    let kind;
    if (ts.isConstructorDeclaration(m)) {
      lines.push(`constructor(${m.parameters.map((p) => p.name.getText()).join(', ')})`);
      continue;
    } else if (ts.isMethodDeclaration(m)) kind = 'method';
    else if (ts.isPropertyDeclaration(m)) kind = 'property';
    else if (ts.isGetAccessorDeclaration(m)) kind = 'get';
    else if (ts.isSetAccessorDeclaration(m)) kind = 'set';
    else if (ts.isIndexSignatureDeclaration(m)) kind = 'index';
    else continue; // class static blocks, semicolons
    const mods = [
      hasModifier(m, ts.SyntaxKind.StaticKeyword) && 'static',
      hasModifier(m, ts.SyntaxKind.AbstractKeyword) && 'abstract',
      hasModifier(m, ts.SyntaxKind.ReadonlyKeyword) && 'readonly',
    ].filter(Boolean);
    const name = m.name ? m.name.getText() : '[index]';
    lines.push([...mods, kind, name].join(' '));
  }
  // Overloads declare a method more than once: list it once.
  return [...new Set(lines)];
}

/**
 * The public API of one lib: `{ names: [{ name, kinds, members, internal }], text }` where `text` is the
 * api/<lib>.api.md content.
 */
function reportFor(program, lib) {
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(lib.entry);
  if (!source) throw new Error(`${lib.entry} is not in the program`);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  const exports = moduleSymbol ? checker.getExportsOfModule(moduleSymbol) : [];
  const names = exports
    .map((exp) => {
      const symbol = exp.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exp) : exp;
      const decls = symbol.declarations ?? [];
      const members = decls.filter(ts.isClassDeclaration).flatMap(classMembers);
      return {
        name: exp.name,
        kinds: kindsOf(symbol),
        members: [...new Set(members)].sort(),
        internal: decls.some(isInternal),
      };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const lines = [
    `# ${lib.pkgName} — public API`,
    '',
    `<!-- Generated by \`npm run api:update\` (scripts/api-report.js) from libs/${lib.name}/src/index.ts;`,
    '     checked by test/api-report.spec.ts. Do not edit by hand. -->',
    '',
    `${names.length} exported names. Classes list their public members that are not \`@internal\`.`,
    '',
    '```text',
    ...names.flatMap((n) => [`${n.kinds.join(' + ')} ${n.name}`, ...n.members.map((m) => `  ${m}`)]),
    '```',
    '',
  ];
  return { names, text: lines.join('\n') };
}

/** Every lib's report: Map<lib folder name, { pkgName, file, names, text }>. */
function computeReports() {
  const libs = libsWithEntry();
  const program = createProgram(libs.map((l) => l.entry));
  const reports = new Map();
  for (const lib of libs) {
    reports.set(lib.name, {
      pkgName: lib.pkgName,
      file: path.join(API_DIR, `${lib.name}.api.md`),
      ...reportFor(program, lib),
    });
  }
  return reports;
}

/** Libs whose checked-in report differs from the computed one (or is missing), and stale report files. */
function differences(reports = computeReports()) {
  const diffs = [];
  for (const [name, r] of reports) {
    const current = fs.existsSync(r.file) ? fs.readFileSync(r.file, 'utf8') : undefined;
    if (current !== r.text) diffs.push({ lib: name, file: r.file, expected: r.text, actual: current });
  }
  if (fs.existsSync(API_DIR)) {
    for (const f of fs.readdirSync(API_DIR)) {
      const m = /^(.*)\.api\.md$/.exec(f);
      if (m && !reports.has(m[1]))
        diffs.push({ lib: m[1], file: path.join(API_DIR, f), expected: undefined, actual: 'stale' });
    }
  }
  return diffs;
}

function main(argv) {
  const reports = computeReports();
  if (argv.includes('--check')) {
    const diffs = differences(reports);
    for (const d of diffs) console.error(`[api-report] ${path.relative(ROOT, d.file)} is out of date`);
    if (diffs.length) {
      console.error('[api-report] run `npm run api:update` and review the diff');
      process.exit(1);
    }
    console.log(`[api-report] ${reports.size} report(s) up to date`);
    return;
  }
  fs.mkdirSync(API_DIR, { recursive: true });
  for (const d of differences(reports)) {
    if (d.expected === undefined) fs.rmSync(d.file);
  }
  for (const [, r] of reports) fs.writeFileSync(r.file, r.text);
  console.log(`[api-report] wrote ${[...reports.keys()].map((n) => `api/${n}.api.md`).join(', ')}`);
}

if (require.main === module) main(process.argv.slice(2));

module.exports = { computeReports, differences };
