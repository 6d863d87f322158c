package io.moescore.arrow;

import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A fresh Arrow root allocator for each test, closed after it: closing throws where the test leaked Arrow memory,
 * so every test using it is leak-checked. {@code @RegisterExtension final LeakCheckedAllocator arrow = new
 * LeakCheckedAllocator();} then {@code arrow.allocator()}.
 */
public final class LeakCheckedAllocator implements BeforeEachCallback, AfterEachCallback {
    private BufferAllocator allocator;

    public BufferAllocator allocator() {
        if (allocator == null) {
            throw new IllegalStateException("the allocator exists only while a test runs");
        }
        return allocator;
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        allocator = new RootAllocator();
    }

    @Override
    public void afterEach(ExtensionContext context) {
        BufferAllocator a = allocator;
        allocator = null;
        a.close(); // throws if the test leaked Arrow memory
    }
}
