//! Orders a wasm module's functions so that the ones a request runs lie together, and drops the
//! names it read them by.
//!
//! wasmtime lays a module's machine code out in the order of its functions, and the policy
//! server runs each request with cold caches: a call pays for every page and cache line of
//! code it touches. The linker orders functions by where they were defined, which spreads one
//! request's few dozen functions over the whole module. This moves the functions a list names
//! to the front, in the list's order, and keeps the others in theirs.
//!
//! ```text
//! wasm-layout [--keep-names] ORDER IN.wasm OUT.wasm
//! ```
//!
//! `IN.wasm` must have its `name` section; `OUT.wasm` has none (as a stripped module), or,
//! with `--keep-names`, the functions' names only, for a profile of the laid-out module. ORDER
//! has one function name a line, without the symbol hash (`::h0123…`) or crate disambiguators
//! (`core[0123…]`); a line ending in `*` names every function whose name starts with the rest.
//! Blank lines and lines starting with `#` are left out. A line that names no function is
//! reported, and the module is still written: an order only makes a module faster or slower,
//! never different in what it does.

use std::process::ExitCode;

use wasm_encoder::reencode::{utils, Error, Reencode};
use wasmparser::{KnownCustom, Name, Parser, Payload, TypeRef};

type Result<T, E = Error<String>> = std::result::Result<T, E>;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let keep_names = args.first().is_some_and(|arg| arg == "--keep-names");
    if keep_names {
        args.remove(0);
    }
    let [order, input, output] = args.as_slice() else {
        eprintln!("usage: wasm-layout [--keep-names] ORDER IN.wasm OUT.wasm");
        return ExitCode::from(2);
    };
    match run(order, input, output, keep_names) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("wasm-layout: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(order_path: &str, input: &str, output: &str, keep_names: bool) -> Result<(), String> {
    let order = std::fs::read_to_string(order_path).map_err(|e| format!("{order_path}: {e}"))?;
    let module = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
    let functions = Functions::read(&module).map_err(|e| format!("{input}: {e}"))?;
    if functions.names.iter().all(String::is_empty) {
        return Err(format!(
            "{input} names none of its functions: keep its name section (wasm-opt -g)"
        ));
    }
    let (mut layout, unmatched) = functions.layout(&order);
    layout.keep_names = keep_names;
    for line in unmatched {
        eprintln!("wasm-layout: {order_path}: no function is named {line:?}");
    }
    eprintln!(
        "wasm-layout: {} of {} functions moved to the front",
        layout.placed,
        layout.position.len()
    );
    let written = layout.apply(&module).map_err(|e| format!("{input}: {e}"))?;
    std::fs::write(output, written).map_err(|e| format!("{output}: {e}"))
}

/// The functions a module defines, with their names.
struct Functions {
    imported: u32,
    /// The name of each defined function (empty when it has none), by position.
    names: Vec<String>,
}

impl Functions {
    fn read(module: &[u8]) -> wasmparser::Result<Self> {
        let (mut imported, mut defined, mut named) = (0, 0, Vec::new());
        for payload in Parser::new(0).parse_all(module) {
            match payload? {
                Payload::ImportSection(section) => {
                    for import in section.into_imports() {
                        if matches!(import?.ty, TypeRef::Func(_) | TypeRef::FuncExact(_)) {
                            imported += 1;
                        }
                    }
                }
                Payload::FunctionSection(section) => defined = section.count(),
                Payload::CustomSection(section) => {
                    if let KnownCustom::Name(names) = section.as_known() {
                        for name in names {
                            if let Name::Function(map) = name? {
                                for naming in map {
                                    let naming = naming?;
                                    named.push((naming.index, naming.name.to_owned()));
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let mut names = vec![String::new(); defined as usize];
        for (index, name) in named {
            if let Some(slot) = index
                .checked_sub(imported)
                .and_then(|i| names.get_mut(i as usize))
            {
                *slot = plain_name(&format!("{:#}", rustc_demangle::demangle(&name)));
            }
        }
        Ok(Self { imported, names })
    }

    /// The layout `order` asks for, and the lines of it that name no function.
    fn layout<'o>(&self, order: &'o str) -> (Layout, Vec<&'o str>) {
        let mut taken = vec![false; self.names.len()];
        let mut front = Vec::new();
        let mut unmatched = Vec::new();
        let lines = order
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'));
        for line in lines {
            let mut names_any = false;
            for (position, name) in self.names.iter().enumerate() {
                let named = match line.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix),
                    None => name == line,
                };
                names_any |= named;
                if named && !taken[position] {
                    taken[position] = true;
                    front.push(position as u32);
                }
            }
            if !names_any {
                unmatched.push(line);
            }
        }
        let placed = front.len();
        let mut order = front;
        order.extend((0..self.names.len() as u32).filter(|&p| !taken[p as usize]));
        let mut position = vec![0; order.len()];
        for (new, &old) in order.iter().enumerate() {
            position[old as usize] = new as u32;
        }
        (
            Layout {
                imported: self.imported,
                order,
                position,
                placed,
                keep_names: false,
            },
            unmatched,
        )
    }
}

/// A demangled symbol's name without what changes from build to build: its hash (`::h` and
/// 16 hex digits, which the demangler leaves on some) and crate disambiguators
/// (`core[9f8d08631ff90aa5]`).
fn plain_name(name: &str) -> String {
    let name = match name.rsplit_once("::h") {
        Some((stem, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            stem
        }
        _ => name,
    };
    let mut plain = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(open) = rest.find('[') {
        let (before, after) = rest.split_at(open);
        plain.push_str(before);
        match after.find(']') {
            Some(close) if after[1..close].bytes().all(|b| b.is_ascii_hexdigit()) => {
                rest = &after[close + 1..];
            }
            _ => {
                plain.push('[');
                rest = &after[1..];
            }
        }
    }
    plain.push_str(rest);
    plain
}

/// A new order of a module's defined functions.
struct Layout {
    imported: u32,
    /// Old positions, in their new order.
    order: Vec<u32>,
    /// The new position of each defined function, by its old one.
    position: Vec<u32>,
    /// How many functions the order file moved to the front.
    placed: usize,
    /// Whether the functions' names are kept (in their new order); other names are dropped.
    keep_names: bool,
}

impl Layout {
    fn apply(mut self, module: &[u8]) -> Result<Vec<u8>> {
        let mut out = wasm_encoder::Module::new();
        self.parse_core_module(&mut out, Parser::new(0), module)?;
        Ok(out.finish())
    }

    /// A section's entries, one per defined function, in the new order.
    fn reordered<T>(
        &self,
        entries: impl IntoIterator<Item = wasmparser::Result<T>>,
    ) -> Result<Vec<T>> {
        let mut entries = entries
            .into_iter()
            .map(|entry| entry.map(Some))
            .collect::<wasmparser::Result<Vec<_>>>()?;
        if entries.len() != self.order.len() {
            return Err(Error::UserError(format!(
                "a section has {} entries for {} functions",
                entries.len(),
                self.order.len()
            )));
        }
        Ok(self
            .order
            .iter()
            .filter_map(|&old| entries[old as usize].take())
            .collect())
    }
}

impl Reencode for Layout {
    type Error = String;

    fn function_index(&mut self, func: u32) -> Result<u32> {
        let Some(defined) = func.checked_sub(self.imported) else {
            return Ok(func);
        };
        match self.position.get(defined as usize) {
            Some(position) => Ok(self.imported + position),
            None => Err(Error::UserError(format!("no function {func}"))),
        }
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<()> {
        for ty in self.reordered(section)? {
            functions.function(ty);
        }
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<()> {
        for body in self.reordered(section)? {
            self.parse_function_body(code, body)?;
        }
        Ok(())
    }

    /// The names are dropped, as a stripped release module has none; or, kept, the
    /// functions' names in the order of their new indices, as the name section must list them.
    fn parse_custom_section(
        &mut self,
        module: &mut wasm_encoder::Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<()> {
        let KnownCustom::Name(names) = section.as_known() else {
            return utils::parse_custom_section(self, module, section);
        };
        if !self.keep_names {
            return Ok(());
        }
        let mut functions = Vec::new();
        for name in names {
            if let Name::Function(map) = name? {
                for naming in map {
                    let naming = naming?;
                    functions.push((self.function_index(naming.index)?, naming.name));
                }
            }
        }
        functions.sort_unstable();
        let mut map = wasm_encoder::NameMap::new();
        for (index, name) in functions {
            map.append(index, name);
        }
        let mut kept = wasm_encoder::NameSection::new();
        kept.functions(&map);
        module.section(&kept);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::{
        CodeSection, ConstExpr, CustomSection, ElementSection, Elements, ExportKind, ExportSection,
        Function, FunctionSection, IndirectNameMap, Instruction, Module, NameMap, NameSection,
        RefType, TableSection, TableType, TypeSection, ValType,
    };
    use wasmparser::{Operator, Validator};

    /// A module importing one function and defining `a`, `b` and `c`, each returning its own
    /// number plus, for `a`, what `c` returns; `b` is exported and `a` is in a table.
    fn module() -> Vec<u8> {
        let mut types = TypeSection::new();
        types.ty().function([], [ValType::I32]);
        let mut imports = wasm_encoder::ImportSection::new();
        imports.import("env", "imported", wasm_encoder::EntityType::Function(0));
        let mut functions = FunctionSection::new();
        let mut tables = TableSection::new();
        tables.table(TableType {
            element_type: RefType::FUNCREF,
            table64: false,
            minimum: 1,
            maximum: Some(1),
            shared: false,
        });
        let mut exports = ExportSection::new();
        exports.export("b", ExportKind::Func, 2);
        let mut elements = ElementSection::new();
        elements.active(
            Some(0),
            &ConstExpr::i32_const(0),
            Elements::Functions([1].as_slice().into()),
        );
        let mut code = CodeSection::new();
        for (number, calls) in [(10, Some(3)), (20, None), (30, None)] {
            functions.function(0);
            let mut body = Function::new([]);
            body.instruction(&Instruction::I32Const(number));
            if let Some(callee) = calls {
                body.instruction(&Instruction::Call(callee));
                body.instruction(&Instruction::I32Add);
            }
            body.instruction(&Instruction::End);
            code.function(&body);
        }
        let mut names = NameMap::new();
        names.append(0, "imported");
        names.append(1, "m::a::h0123456789abcdef");
        names.append(2, "m::b::h0123456789abcdef");
        names.append(3, "m::c::h0123456789abcdef");
        let mut name_section = NameSection::new();
        name_section.functions(&names);
        name_section.locals(&IndirectNameMap::new());
        let mut module = Module::new();
        module
            .section(&types)
            .section(&imports)
            .section(&functions)
            .section(&tables)
            .section(&exports)
            .section(&elements)
            .section(&code)
            .section(&name_section)
            .section(&CustomSection {
                name: "producers".into(),
                data: [0].as_slice().into(),
            });
        module.finish()
    }

    /// What the tests read of a module.
    #[derive(Debug, PartialEq)]
    struct Shape {
        /// Each defined function's first constant and the functions it calls, in module order.
        bodies: Vec<(i32, Vec<u32>)>,
        exported: u32,
        tabled: u32,
        custom: Vec<String>,
    }

    fn read(module: &[u8]) -> Shape {
        Validator::new().validate_all(module).unwrap();
        let (mut bodies, mut exported, mut tabled, mut custom) = (Vec::new(), 0, 0, Vec::new());
        for payload in Parser::new(0).parse_all(module) {
            match payload.unwrap() {
                Payload::CodeSectionEntry(body) => {
                    let (mut number, mut calls) = (0, Vec::new());
                    for operator in body.get_operators_reader().unwrap() {
                        match operator.unwrap() {
                            Operator::I32Const { value } if number == 0 => number = value,
                            Operator::Call { function_index } => calls.push(function_index),
                            _ => {}
                        }
                    }
                    bodies.push((number, calls));
                }
                Payload::ExportSection(section) => {
                    exported = section.into_iter().next().unwrap().unwrap().index;
                }
                Payload::ElementSection(section) => {
                    let element = section.into_iter().next().unwrap().unwrap();
                    if let wasmparser::ElementItems::Functions(items) = element.items {
                        tabled = items.into_iter().next().unwrap().unwrap();
                    }
                }
                Payload::CustomSection(section) => custom.push(section.name().to_owned()),
                _ => {}
            }
        }
        Shape {
            bodies,
            exported,
            tabled,
            custom,
        }
    }

    #[test]
    fn the_named_functions_go_first_and_every_reference_follows_them() {
        let module = module();
        let before = read(&module);
        assert_eq!(before.bodies, [(10, vec![3]), (20, vec![]), (30, vec![])]);
        assert_eq!((before.exported, before.tabled), (2, 1));
        assert_eq!(before.custom, ["name", "producers"]);

        let functions = Functions::read(&module).unwrap();
        let (layout, unmatched) = functions.layout("# c, then b\nm::c\n\nm::b*\nm::gone\n");
        assert_eq!(unmatched, ["m::gone"]);
        assert_eq!(layout.placed, 2);
        let laid_out = layout.apply(&module).unwrap();

        // c, b, a: a still calls c, now at index 1; b is still exported, a still tabled.
        let after = read(&laid_out);
        assert_eq!(after.bodies, [(30, vec![]), (20, vec![]), (10, vec![1])]);
        assert_eq!((after.exported, after.tabled), (2, 3));
        assert_eq!(after.custom, ["producers"]);
    }

    #[test]
    fn kept_names_follow_their_functions() {
        let module = module();
        let (mut layout, _) = Functions::read(&module).unwrap().layout("m::c");
        layout.keep_names = true;
        let laid_out = layout.apply(&module).unwrap();
        assert_eq!(read(&laid_out).custom, ["name", "producers"]);
        let names = Functions::read(&laid_out).unwrap().names;
        assert_eq!(names, ["m::c", "m::a", "m::b"]);
    }

    #[test]
    fn an_empty_order_keeps_the_functions_where_they_are() {
        let module = module();
        let (layout, unmatched) = Functions::read(&module).unwrap().layout("");
        assert!(unmatched.is_empty());
        assert_eq!(layout.placed, 0);
        let (before, after) = (read(&module), read(&layout.apply(&module).unwrap()));
        assert_eq!(after.bodies, before.bodies);
        assert_eq!(
            (after.exported, after.tabled),
            (before.exported, before.tabled)
        );
    }

    #[test]
    fn names_lose_their_hash_and_crate_disambiguators() {
        assert_eq!(
            plain_name("image_pull_policy::request::scan::Reader::skip::h571a0896dc5c35d5"),
            "image_pull_policy::request::scan::Reader::skip"
        );
        assert_eq!(
            plain_name("core[9f8d08631ff90aa5]::str::converts::from_utf8"),
            "core::str::converts::from_utf8"
        );
        assert_eq!(plain_name("a::hello"), "a::hello");
        assert_eq!(plain_name("x[not hex]::y"), "x[not hex]::y");
    }
}
