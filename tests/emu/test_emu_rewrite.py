"""The source rewriter on its own: which kernels it exports and how it rewrites __shared__."""
import pytest

from dlcore.emu.rewrite import RewriteError, translate


def kernels_of(source, name_expressions=()):
    return translate(source, name_expressions).kernels


def body_of(source):
    """The rewritten source without the appended kernel table."""
    return translate(source).source.split('\n# 1 "<dlcore.emu kernel table>"')[0]


def test_exports_non_template_kernels_in_order():
    source = """
    extern "C" __global__ void first(float* x) {}
    __global__ void __launch_bounds__(256, 2) second(int n) {}
    template <typename T> __global__ void templated(T* x) {}
    template <int N>
    __global__ void also_templated() {}
    extern "C" {
    __global__ void in_linkage_block() {}
    }
    __device__ float helper(float x) { return x; }
    """
    assert kernels_of(source) == ["first", "second", "in_linkage_block"]


def test_name_expressions_follow_the_plain_kernels():
    source = 'template <typename T> __global__ void scale(T* x) {}\nextern "C" __global__ void k() {}'
    translation = translate(source, ("scale<float>", "scale<double>"))
    assert translation.kernels == ["k", "scale<float>", "scale<double>"]
    assert 'make_entry< &::scale<float> >("scale<float>")' in translation.source


def test_kernels_in_namespaces_are_qualified_and_declarations_dedupe():
    source = """
    namespace outer { namespace inner {
    __global__ void k(float* x);
    __global__ void k(float* x) {}
    } }
    namespace { __global__ void hidden() {} }
    namespace outer { extern "C" __global__ void c_linkage() {} }
    """
    translation = translate(source)
    assert translation.kernels == ["outer::inner::k", "hidden", "c_linkage"]
    assert "make_entry< &::outer::c_linkage >" in translation.source


def test_static_shared_array_becomes_a_reference_to_per_block_storage():
    out = body_of("__global__ void k() { __shared__ float tile[16][16 + 1]; }")
    assert (
        "struct dlcore_emu_site_0; float (&tile)[16][16 + 1] = "
        "::dlcore_emu::shared_variable<float [16][16 + 1], 1, dlcore_emu_site_0>();"
    ) in out


def test_shared_qualifiers_alignment_and_several_declarators():
    out = body_of(
        "__global__ void k() { static __shared__ __align__(16) unsigned int a[4], *b, c; volatile __shared__ float v; }"
    )
    assert "unsigned int (&a)[4] = ::dlcore_emu::shared_variable<unsigned int [4], 16, dlcore_emu_site_0>();" in out
    assert "unsigned int *(&b) = ::dlcore_emu::shared_variable<unsigned int *, 16, dlcore_emu_site_1>();" in out
    assert "unsigned int (&c) = ::dlcore_emu::shared_variable<unsigned int , 16, dlcore_emu_site_2>();" in out
    assert "volatile float (&v) = ::dlcore_emu::shared_variable<volatile float , 1, dlcore_emu_site_3>();" in out
    assert "static" not in out and "__shared__" not in out


def test_template_types_in_shared_declarations():
    out = body_of("template <typename T, int N> __global__ void k() { __shared__ Pair<T, N> slots[N >> 1]; }")
    assert "Pair < T , N > (&slots)[N >> 1] = ::dlcore_emu::shared_variable<Pair < T , N > [N >> 1]" in out


def test_extern_shared_points_at_dynamic_shared_memory():
    out = body_of(
        "__global__ void k() { extern __shared__ __align__(16) unsigned char raw[];"
        " extern __shared__ float rows[][8]; }"
    )
    assert "unsigned char (*raw) = static_cast<unsigned char (*)>(::dlcore_emu::dynamic_shared());" in out
    assert "float (*rows)[8] = static_cast<float (*)[8]>(::dlcore_emu::dynamic_shared());" in out


def test_rewriting_keeps_every_line_in_place():
    source = '# 1 "k.cu"\n__global__ void k() {\n  __shared__\n    float a[4];\n  after();\n}\n'
    out = body_of(source)
    assert out.count("\n") == source.count("\n")
    assert out.splitlines()[4].strip() == "after();"


def test_unsupported_shared_forms_are_reported_with_their_line():
    with pytest.raises(RewriteError, match=r"k\.cu:2: __shared__ variables at namespace scope"):
        translate('# 1 "k.cu"\n\n__shared__ float everywhere[4];\n')
    with pytest.raises(RewriteError, match=r"k\.cu:1: __shared__ array a needs a size"):
        translate('# 1 "k.cu"\n__global__ void k() { __shared__ float a[]; }')
    with pytest.raises(RewriteError, match="extern __shared__ b must be declared as b\\[\\]"):
        translate("__global__ void k() { extern __shared__ float b[4]; }")
