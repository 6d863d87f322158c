package io.moescore.backend.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jcuda.driver.CUdeviceptr;
import org.junit.jupiter.api.Test;

/** What of the cuBLASLt binding runs without a GPU: addresses, alignment, choosing (or refusing) a library. */
class CublasLtTest {
    @Test
    void addressesIncludeTheByteOffsetsOfDerivedPointers() {
        CUdeviceptr base = new CUdeviceptr();
        assertEquals(0, CublasLt.Address.of(base));
        assertEquals(4096, CublasLt.Address.of(base.withByteOffset(4096)));
        assertEquals(4096 + 48, CublasLt.Address.of(base.withByteOffset(4096).withByteOffset(48)));
    }

    @Test
    void onlyPointersOn256ByteBoundariesAreOffered() {
        CUdeviceptr base = new CUdeviceptr();
        assertTrue(CublasLt.aligned(base.withByteOffset(512), null, base.withByteOffset(256)));
        assertFalse(CublasLt.aligned(base.withByteOffset(512), base.withByteOffset(2048 + 16)));
    }

    @Test
    void noneSwitchesTheLibraryOffAndAMissingFileIsNamed() {
        String before = System.getProperty("moescore.cublasLt");
        try {
            System.setProperty("moescore.cublasLt", "none");
            assertNull(CublasLt.load(HalfType.BF16));
            System.setProperty("moescore.cublasLt", "/no/such/libcublasLt.so.13");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> CublasLt.load(HalfType.BF16));
            assertTrue(e.getMessage().contains("moescore.cublasLt=/no/such/libcublasLt.so.13"), e.getMessage());
        } finally {
            if (before == null) {
                System.clearProperty("moescore.cublasLt");
            } else {
                System.setProperty("moescore.cublasLt", before);
            }
        }
    }

    @Test
    void aMachineWithoutTheLibraryOffersNothing() {
        org.junit.jupiter.api.Assumptions.assumeTrue(System.getProperty("moescore.cublasLt") == null
                && System.getenv("MOESCORE_CUBLASLT") == null, "a library is configured");
        try {
            com.sun.jna.NativeLibrary.getInstance("cublasLt").close();
            org.junit.jupiter.api.Assumptions.abort("this machine has cuBLASLt");
        } catch (UnsatisfiedLinkError expected) {
            // no library: load must say so by returning null, not by failing
        }
        assertNull(CublasLt.load(HalfType.BF16));
    }
}
